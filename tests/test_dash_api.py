"""The app's HTTP surface: the load-test endpoint, login, binding rules, the CLI."""

import base64
import subprocess
import sys

import psycopg
import pytest
import yaml

from dash_app.app import check_exposure, create_app
from dash_support import seeded  # noqa: F401  (fixture)
from fraud.cli import UserError
from fraud.stack.process import wait_until
from pipeline_support import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(seeded):  # noqa: F811
    app = create_app("conf/local.yaml", seeded.environ)
    yield app
    app.server.extensions["fraud_dash"].load_tests.stop_all()
    app.server.extensions["fraud_dash"].source.close()


@pytest.mark.parametrize("body, message", [
    ({"domain": "moon", "loadLevel": "mini"}, "domain must be one of gaming, fintech, ecommerce or all"),
    ({"domain": "gaming", "loadLevel": "extreme"}, "loadLevel must be one of mini, normal, peak, crisis"),
    ({"loadLevel": "mini"}, "domain must be one of"),
    ({"domain": "all", "loadLevel": "mini", "fraudShare": 1.5}, "fraudShare must be a number between 0 and 1"),
    ({"domain": "all", "loadLevel": "mini", "durationS": 0}, "durationS must be a whole number"),
    ({"domain": "all", "loadLevel": "mini", "rate": 5}, "unknown field 'rate'"),
    ([1, 2], "expected a JSON object"),
])
def test_execute_rejects_bad_requests(app, body, message):
    response = app.server.test_client().post("/api/test/execute", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_execute_starts_a_simulator_run(app, seeded):  # noqa: F811
    client = app.server.test_client()
    response = client.post("/api/test/execute", json={"domain": "gaming", "loadLevel": "mini", "durationS": 13})
    assert response.status_code == 202
    test_id = response.get_json()["testId"]
    assert test_id.startswith("dash-")

    def run_status():
        with psycopg.connect(seeded.dsn) as conn:
            row = conn.execute("SELECT status, domains, load_level FROM simulation_runs WHERE test_id = %s",
                               (test_id,)).fetchone()
        return row

    # mini = 5 events/min: 13 s is one event, then the run completes.
    assert wait_until(lambda: (run_status() or ("",))[0] == "completed", 90, interval_s=0.5), \
        client.get(f"/api/test/{test_id}").get_json()
    assert run_status() == ("completed", ["gaming"], "mini")
    # The run row is final just before the simulator process exits.
    assert wait_until(lambda: not client.get(f"/api/test/{test_id}").get_json()["process"]["running"], 30)
    state = client.get(f"/api/test/{test_id}").get_json()
    assert state["run"]["status"] == "completed" and state["run"]["events_sent"] == 1
    # 3: the simulator's "could not keep the rate" warning, which a one-event run may well print.
    assert state["process"]["running"] is False and state["process"]["exit_code"] in (0, 3)
    assert client.get("/api/test/nope").status_code == 404


def _config_with_login(tmp_path):
    raw = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    raw["dashboard"]["auth_user_env"] = "TEST_DASH_USER"
    raw["dashboard"]["auth_password_env"] = "TEST_DASH_PASSWORD"
    path = tmp_path / "login.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_login_when_configured(seeded, tmp_path):  # noqa: F811
    path = _config_with_login(tmp_path)
    with pytest.raises(UserError, match="TEST_DASH_USER is not set"):
        create_app(path, seeded.environ)
    app = create_app(path, {**seeded.environ, "TEST_DASH_USER": "ana", "TEST_DASH_PASSWORD": "pw-canary"})
    client = app.server.test_client()
    assert client.get("/").status_code == 401
    assert client.post("/api/test/execute", json={}).status_code == 401
    wrong = base64.b64encode(b"ana:nope").decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    good = base64.b64encode(b"ana:pw-canary").decode()
    assert client.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
    check_exposure("0.0.0.0", app)  # allowed: login is on


def test_no_login_binds_loopback_only(app):
    check_exposure("127.0.0.1", app)
    check_exposure("localhost", app)
    with pytest.raises(UserError, match="refusing to listen on 0.0.0.0 without a login"):
        check_exposure("0.0.0.0", app)


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "error: --port must be between 1 and 65535"),
    (["--port", "abc"], "error: argument --port: invalid int value"),
    (["--config", "missing.yaml"], "error: config file not found"),
    (["--host", "0.0.0.0", "--port", "8999"], "error: refusing to listen on 0.0.0.0"),
])
def test_cli_bad_arguments_are_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "dash_app", *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_module_import_builds_nothing():
    result = subprocess.run(
        [sys.executable, "-c", "import dash_app.app as m; assert m._app is None; "
         "from flask import Flask; assert isinstance(m.server, Flask); assert m._app is not None"],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
