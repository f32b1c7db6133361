"""Alerts in the real PostgreSQL: episodes, deterministic ids, replays, analyst columns, retries."""

import dataclasses
import datetime as dt
import random
import string

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from fraud.alerts import AlertSink, alert_id

from pipeline_support import as_role, create_database

pytestmark = pytest.mark.integration
T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)


def row(txn, seconds, actor="fi-1", kind="fraud_structuring", score=0.8, amount=9800.0, offset=None, **more):
    return {"transaction_id": txn, "domain": "fintech", "actor_id": actor, "predicted_class": kind,
            "event_time": T0 + dt.timedelta(seconds=seconds), "amount": amount, "currency": "USD", "fraud_score": score,
            "class_probabilities": {kind: score, "regular": 1 - score}, "kafka_timestamp": T0,
            "model_version": "v0001", "test_id": "t", "quality_flags": [],
            "alert_type": kind, "raised_by": ["model"], "rule_reasons": [], "expected_loss_usd": score * amount,
            "position": ("fintech-transactions", 0, seconds if offset is None else offset), **more}


@pytest.fixture
def sink(stack, config, unique_name):
    dsn = create_database(stack["postgres"]["dsn"], unique_name("alerts").replace("-", "_"))
    pool = ConnectionPool(as_role(dsn, "stream"), min_size=1, max_size=2, open=True)
    yield AlertSink(config, pool), dsn
    pool.close()


def alerts(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT alert_id, txn_count, total_amount::float, max_score, severity, status,"
                            " analyst_note FROM alerts ORDER BY first_seen").fetchall()


def test_episodes_ids_and_aggregates(sink):
    alert_sink, dsn = sink
    result = alert_sink.write("q", 0, [row("a", 0, score=0.7), row("b", 30, score=0.95), row("c", 4000)])
    assert result.applied and result.alerts_touched == 2 and result.transactions_added == 3
    first, second = alerts(dsn)
    assert first[:5] == (alert_id("fintech", "fi-1", "fraud_structuring", T0), 2, 19600.0, 0.95, "critical")
    assert second[0] == alert_id("fintech", "fi-1", "fraud_structuring", T0 + dt.timedelta(seconds=4000))
    # A later batch extends the open episode instead of opening another.
    alert_sink.write("q", 1, [row("d", 4100, score=0.61)])
    assert [a[1:3] for a in alerts(dsn)] == [(2, 19600.0), (2, 19600.0)]


def test_replayed_batch_changes_nothing_and_analyst_columns_survive(sink):
    alert_sink, dsn = sink
    batch = [row("a", 0), row("b", 10)]
    alert_sink.write("q", 7, batch)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE alerts SET status = 'confirmed_fraud', analyst_note = %s, status_by = 'ana'",
                     ("called the bank",))
    before = alerts(dsn)
    again = alert_sink.write("q", 7, batch)
    assert not again.applied
    assert alerts(dsn) == before
    alert_sink.write("q", 8, [row("c", 20)])
    (only,) = alerts(dsn)
    assert only[1] == 3 and only[5:] == ("confirmed_fraud", "called the bank")


def test_transient_failure_retries_then_fails_the_batch(config, caplog):
    """A database that does not answer: bounded retries with backoff, then the error fails the batch."""
    from fraud_devstack.process import free_port

    quick = dataclasses.replace(config, alerts=dataclasses.replace(config.alerts, max_retries=2, retry_backoff_s=0.01))
    pool = ConnectionPool(f"postgresql://fraud@127.0.0.1:{free_port()}/fraud", min_size=1, max_size=1, timeout=0.5,
                          kwargs={"connect_timeout": 1}, open=True)
    try:
        with pytest.raises(psycopg.OperationalError):
            AlertSink(quick, pool).write("q", 0, [row("a", 0)])
    finally:
        pool.close()
    retries = [r.getMessage() for r in caplog.records if "PostgreSQL unavailable" in r.getMessage()]
    assert len(retries) == 2 and retries[-1].endswith("retry 2/2 in 0.0 s")


def incompressible(n: int) -> str:
    """Text PostgreSQL cannot compress below its index row limit (2,704 bytes), as a long id may be."""
    return "".join(random.Random(n).choices(string.ascii_letters + string.digits, k=n))


def test_values_postgresql_refuses_are_isolated_and_the_rest_commits(sink):
    """Each value class PostgreSQL refuses (a NUL in text, an index row over its size limit, a NaN in
    jsonb, a CHECK constraint) isolates its own row, named by its Kafka position and the error's
    class; the other rows commit, and a replay isolates the same rows and adds nothing."""
    alert_sink, dsn = sink
    with psycopg.connect(dsn, autocommit=True) as conn:  # an operator's constraint on a value
        conn.execute("ALTER TABLE alert_transactions ADD CONSTRAINT amount_cap CHECK (amount < 1000000)")
    batch = [row("ok-1", 0), row("nul", 1, actor="fi-\x00-2"), row(incompressible(5000), 2), row("ok-2", 3),
             row("nan", 4, top_features=[{"feature": "f_log_amount", "value": float("nan")}]),
             row("huge", 5, amount=2_000_000.0), row("ok-3", 6, actor="fi-3")]
    result = alert_sink.write("q", 0, batch)
    expected = {("fintech-transactions", 0, 1): "unprocessable:DataError",
                ("fintech-transactions", 0, 2): "unprocessable:ProgramLimitExceeded",
                ("fintech-transactions", 0, 4): "unprocessable:InvalidTextRepresentation",
                ("fintech-transactions", 0, 5): "unprocessable:CheckViolation"}
    assert result.applied and result.isolated == expected
    with psycopg.connect(dsn) as conn:
        stored = sorted(r[0] for r in conn.execute("SELECT transaction_id FROM alert_transactions"))
    assert stored == ["ok-1", "ok-2", "ok-3"]
    assert [a[1] for a in alerts(dsn)] == [2, 1], "the episodes hold the committed rows only"

    replay = alert_sink.write("q", 0, batch)
    assert not replay.applied and replay.isolated == expected
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM alert_transactions").fetchone()[0] == 3
