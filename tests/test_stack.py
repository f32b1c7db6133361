"""The local stack: health, idempotent up, down leaves nothing, up after a crash restarts it."""

import json
import os
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from fraud_devstack import Stack
from fraud_devstack.process import wait_until

from conftest import ROOT

pytestmark = pytest.mark.integration


def listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def test_status_json_reports_healthy_endpoints(stack):
    result = subprocess.run(
        [sys.executable, "-m", "fraud_devstack", "status", "--json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["kafka"]["healthy"] is True
    assert status["kafka"]["bootstrap"].startswith("127.0.0.1:")
    assert status["postgres"]["healthy"] is True
    assert status["postgres"]["dsn"].startswith("postgresql://fraud@127.0.0.1:")
    assert "password" not in status["postgres"]["dsn"]
    assert set(status) >= {"lake_root", "checkpoint_root"}


def test_up_is_idempotent(stack, config):
    from fraud_devstack import default_stack

    # Compared with the stack as it runs now: the chaos tests restart its services on purpose.
    before = default_stack().status(config)
    again = default_stack().up(config)
    assert before["kafka"]["pid"] and before["postgres"]["pid"]
    assert again["kafka"]["pid"] == before["kafka"]["pid"]
    assert again["postgres"]["pid"] == before["postgres"]["pid"]


def test_own_stack_lifecycle(stack_home, config):
    """A second, private stack: up, crash the broker, up restarts it, down leaves nothing."""
    own = Stack(stack_home / "stack")
    try:
        status = own.up(config)
        bootstrap, dsn_port = status["kafka"]["bootstrap"], status["postgres"]["dsn"].split(":")[2].split("/")[0]
        pg_address = f"127.0.0.1:{dsn_port}"
        assert listening(bootstrap) and listening(pg_address)

        os.killpg(status["kafka"]["pid"], signal.SIGKILL)
        assert wait_until(lambda: not own.status(config)["kafka"]["healthy"], 30)
        restarted = own.up(config)
        assert restarted["kafka"]["healthy"] and restarted["kafka"]["pid"] != status["kafka"]["pid"]
        assert restarted["kafka"]["bootstrap"] == bootstrap, "ports are kept across restarts"
        assert restarted["postgres"]["pid"] == status["postgres"]["pid"], "postgres was left alone"
        pids = [restarted["kafka"]["pid"], restarted["postgres"]["pid"]]
    finally:
        own.down()
    after = own.status(config)
    assert not after["kafka"]["healthy"] and not after["postgres"]["healthy"]
    assert not listening(bootstrap) and not listening(pg_address)
    assert not any(alive(pid) for pid in pids)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie this test process has not reaped."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
