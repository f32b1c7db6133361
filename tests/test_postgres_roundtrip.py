"""Migrations and a parameterised round trip through the real PostgreSQL."""

import datetime as dt

import pytest

from fraud.db import connect, migrate

pytestmark = pytest.mark.integration


def test_migrations_are_idempotent(stack):
    assert migrate(stack["postgres"]["dsn"]) == []
    with connect(stack["postgres"]["dsn"]) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions[0] == "0001_simulation"


def test_rows_round_trip(stack, unique_name):
    test_id = unique_name("rt")
    started = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)
    hostile = "x'); DROP TABLE simulation_runs; --"
    with connect(stack["postgres"]["dsn"]) as conn:
        conn.execute(
            "INSERT INTO simulation_runs (test_id, started_at, domains, seed, message) VALUES (%s, %s, %s, %s, %s)",
            (test_id, started, ["gaming", "fintech"], 7, hostile),
        )
        conn.execute(
            "INSERT INTO ground_truth_sequences VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (test_id, "actor-1", "gaming", "fraud_gold_farming", True, ["t1", "t2"], started,
             started + dt.timedelta(seconds=9)),
        )
    with connect(stack["postgres"]["dsn"]) as conn:
        run = conn.execute(
            "SELECT domains, seed, message, status FROM simulation_runs WHERE test_id = %s", (test_id,)
        ).fetchone()
        truth = conn.execute(
            "SELECT transaction_ids, last_event_time - first_event_time FROM ground_truth_sequences"
            " WHERE test_id = %s", (test_id,)
        ).fetchone()
    assert run == (["gaming", "fintech"], 7, hostile, "running")
    assert truth == (["t1", "t2"], dt.timedelta(seconds=9))


def test_unreachable_server_is_one_line(tmp_path):
    from fraud.cli import UserError
    from fraud.stack.process import free_port

    with pytest.raises(UserError) as err:
        connect(f"postgresql://fraud:secret-canary@127.0.0.1:{free_port()}/fraud", connect_timeout=2)
    assert "cannot connect to PostgreSQL (127.0.0.1:" in str(err.value)
    assert "secret-canary" not in str(err.value)
