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
    from fraud_devstack.process import free_port

    with pytest.raises(UserError) as err:
        connect(f"postgresql://fraud:secret-canary@127.0.0.1:{free_port()}/fraud", connect_timeout=2)
    assert "cannot connect to PostgreSQL (127.0.0.1:" in str(err.value)
    assert "secret-canary" not in str(err.value)


def test_a_rotated_password_is_read_again_and_the_work_goes_on(stack, config, unique_name, monkeypatch):
    """An RDS-managed secret rotates every 7 days: the admin's connections (migrations) fail once
    with the old password, the secret is read again (Secrets Manager through botocore's Stubber,
    the only mock), and the next retry connects with the new one. The password is in no DSN."""
    import json
    from dataclasses import replace

    import boto3
    from botocore.stub import Stubber
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from fraud import secrets
    from fraud.db import RetryPolicy, admin_dsn, make_pool

    admin = stack["postgres"]["dsn"]
    role = unique_name("rotated").replace("-", "_")
    with connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal("before-1")))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(  # as the RDS master may
            sql.Identifier(conn.info.dbname), sql.Identifier(role)))
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-db-credentials-AbCdEf"
    manager = boto3.client("secretsmanager", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
    stub = Stubber(manager)
    for password in ("before-1", "before-1", "after:2\\"):  # username, then the password twice  # the second with the characters libpq's file escapes
        stub.add_response("get_secret_value", {"ARN": arn, "Name": "rds", "SecretString": json.dumps(
            {"username": role, "password": password})}, {"SecretId": arn})
    stub.activate()
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: manager)
    monkeypatch.setattr(secrets, "REREAD_AFTER_S", 0.0)
    monkeypatch.setattr(secrets, "_FILES", {})  # only this test's secret is read again
    server = {k: v for k, v in conninfo_to_dict(admin).items() if k in ("host", "port", "dbname")}
    cfg = replace(config, postgres=replace(config.postgres, dsn=make_conninfo(**server),
                                           admin_secret_arn=arn, connect_timeout_s=2))
    dsn = admin_dsn(cfg)
    assert "before-1" not in dsn and "passfile=" in dsn
    retry = RetryPolicy(4, 0.2)
    pool = make_pool(cfg, dsn)
    try:
        assert retry.run(pool, lambda conn: conn.execute("SELECT current_user").fetchone()[0], "who") == role
        with connect(admin, autocommit=True) as conn:  # the rotation: new password, sessions ended
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal("after:2\\")))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        assert retry.run(pool, lambda conn: conn.execute("SELECT 1").fetchone()[0], "after rotation") == 1
        stub.assert_no_pending_responses()
    finally:
        pool.close()
        with connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
