"""The Dash app's data functions and callback views against a real, seeded PostgreSQL."""

import os
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from dash_app import data
from dash_app.app import create_app
from dash_app.callbacks import live_view, loadtest_view, model_view, pipeline_view
from dash_support import SEED_RUN, _alert, app_config, seeded  # noqa: F401  (fixture)
from fraud.cli import UserError
from fraud.labels import analyst_labels, record_action
from fraud.registry import Registry
from fraud_devstack.process import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app_ctx(seeded):  # noqa: F811
    app = create_app("conf/local.yaml", seeded.environ)
    context = app.server.extensions["fraud_dash"]
    yield context
    context.load_tests.stop_all()
    context.source.close()


def test_live_kpis_from_seeded_rows(app_ctx, seeded):  # noqa: F811
    kpis = data.live_kpis(app_ctx.source, 5)
    assert kpis["events_per_min"] == {d: n / 5 for d, n in seeded.events_by_domain.items()}
    assert kpis["alerts_per_min"] == pytest.approx(3 / 5)  # the two-day-old alert is outside the window
    assert kpis["open_by_severity"] == {"critical": 1, "high": 2, "medium": 0, "low": 0}
    assert kpis["kafka_lag"] == 40 and kpis["model_in_use"] == "v0002" and kpis["model_current"] == "v0002"
    # Seeded events were produced 20 s before their rows were committed.
    assert kpis["alerted_events"] == 8
    assert 19_000 <= kpis["p95_latency_ms"] <= 60_000


def test_feed_filters(app_ctx, seeded):  # noqa: F811
    def ids(**kwargs):
        return [r["alert_id"] for r in data.alert_feed(app_ctx.source, data.FeedFilter(**kwargs), 100)]

    assert ids() == [seeded.gaming, seeded.fintech, seeded.ecommerce]  # newest first, old one out of range
    assert ids(window_min=data.TIME_RANGES["7d"])[-1] == seeded.gaming_old
    assert ids(domains=("fintech", "ecommerce")) == [seeded.fintech, seeded.ecommerce]
    assert ids(severities=("critical",)) == [seeded.gaming]
    assert ids(statuses=("acknowledged",)) == [seeded.ecommerce]
    assert ids(types=("fraud_structuring",)) == [seeded.fintech]
    assert ids(domains=()) == []


def test_velocity_series(app_ctx, seeded):  # noqa: F811
    events = data.events_per_minute(app_ctx.source, 60)
    totals = {}
    for r in events:
        totals[r["domain"]] = totals.get(r["domain"], 0) + r["n"]
    assert totals == seeded.events_by_domain
    alerts = data.alerts_per_minute(app_ctx.source, 60)
    assert sorted(r["domain"] for r in alerts for _ in range(r["n"])) == ["ecommerce", "fintech", "gaming"]


def test_alert_detail(app_ctx, seeded):  # noqa: F811
    detail = data.alert_detail(app_ctx.source, seeded.gaming)
    assert detail["alert"]["severity"] == "critical"
    assert len(detail["transactions"]) == 3
    # The actor's timeline spans both of its alerts.
    assert {r["alert_id"] for r in detail["timeline"]} == {seeded.gaming, seeded.gaming_old}
    assert len(detail["timeline"]) == 5
    assert data.alert_detail(app_ctx.source, "no-such-alert") is None


def test_analyst_actions_persist_and_become_labels(app_ctx, seeded):  # noqa: F811
    now = datetime.now(timezone.utc)
    with psycopg.connect(seeded.dsn) as conn:
        fraud_id = _alert(conn, domain="fintech", actor="actor-label-1", alert_type="fraud_money_laundering",
                          severity="critical", score=0.97, status="open", seen=now, n_txns=2)
        fp_id = _alert(conn, domain="gaming", actor="actor-label-2", alert_type="fraud_gold_farming",
                       severity="low", score=0.71, status="open", seen=now, n_txns=1)
    before = datetime.now(timezone.utc)
    assert data.apply_action(app_ctx.source, fraud_id, "acknowledge", "ana", None)["status"] == "acknowledged"
    row = data.apply_action(app_ctx.source, fraud_id, "confirm_fraud", "bo", "layering via KY")
    assert (row["status"], row["status_by"], row["analyst_note"]) == ("confirmed_fraud", "bo", "layering via KY")
    noted = data.apply_action(app_ctx.source, fraud_id, "note", "cy", "second look done")
    assert (noted["status"], noted["status_by"], noted["analyst_note"]) == ("confirmed_fraud", "bo", "second look done")
    data.apply_action(app_ctx.source, fp_id, "false_positive", "ana", None)
    with psycopg.connect(seeded.dsn) as conn:
        actions = conn.execute("SELECT action, actor, note FROM alert_actions WHERE alert_id = %s ORDER BY id",
                               (fraud_id,)).fetchall()
        labels = analyst_labels(conn, since=before)
        with pytest.raises(UserError, match="unknown action"):
            record_action(conn, fraud_id, "delete", "ana")
        with pytest.raises(UserError, match="no alert"):
            record_action(conn, "missing", "acknowledge", "ana")
        with pytest.raises(UserError, match="analyst's name"):
            record_action(conn, fraud_id, "acknowledge", "  ")
        assert conn.execute("SELECT count(*) FROM alert_actions WHERE alert_id = %s", (fraud_id,)).fetchone() == (3,)
    assert actions == [("acknowledge", "ana", None), ("confirm_fraud", "bo", "layering via KY"),
                       ("note", "cy", "second look done")]
    assert sorted((r["alert_id"], r["label"]) for r in labels) == sorted(
        [(fraud_id, "fraud_money_laundering")] * 2 + [(fp_id, "regular")])


def test_load_test_result_uses_evaluation(app_ctx, seeded):  # noqa: F811
    result = data.load_test_result(app_ctx.source, SEED_RUN)
    assert result["alerts_raised"] == 1
    assert result["evaluation"]["recall"] == 0.5  # one of two fraud sequences alerted with the right type
    assert result["evaluation"]["precision"] == 1.0
    assert result["evaluation"]["latency_ms"]["alerted_events"] == 3
    status, current, history = loadtest_view(app_ctx, SEED_RUN)
    assert status is None and SEED_RUN in str(current) and SEED_RUN in str(history)


def test_pipeline_view_and_cost(app_ctx, seeded):  # noqa: F811
    status, cost_cards, *figs, upkeep = pipeline_view(app_ctx, "1h")
    assert status is None and len(figs) == 6
    assert "kpi-cost" in str(cost_cards)
    batches = data.batch_history(app_ctx.source, 60)
    assert [b["batch_id"] for b in batches] == [0, 1]
    assert figs[4].data[0].y == (14, 6)  # quarantine reasons, largest first
    state = {trace.name: trace.y for trace in figs[5].data}
    assert state == {"rows (thousands)": (1.0, 2.0), "memory (MiB)": (8.0, 16.0)}
    assert "No maintenance run recorded yet" in str(upkeep)

    with psycopg.connect(seeded.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO maintenance_runs (run_id, started_at, finished_at, lake, checkpoint_bytes, state_bytes,"
            " postgres_bytes, rows_expired, alerts_archived) VALUES ('m1', now(), now(), %s, %s, %s, %s, %s, 4)",
            ('{"silver": {"live_files_after": 6, "files_on_disk_after": 235, "log_bytes": 3145728,'
             ' "compaction_s": 2.5, "vacuum_s": 1.5}}', 5 * 2**20, 2**20, '{"alerts": 81920}', '{"batch_metrics": 12}'))
    try:
        upkeep = str(pipeline_view(app_ctx, "1h")[-1])
        assert "checkpoint 5.0 MiB, of which state 1.0 MiB; 4 closed alerts archived" in upkeep
        assert "batch_metrics 12" in upkeep
        assert all(v in upkeep for v in ("'silver'", "'6'", "'235'", "3.0 MiB", "2.5 s / 1.5 s", "0.1 MiB"))
    finally:
        with psycopg.connect(seeded.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM maintenance_runs")


def test_cost_estimate_arithmetic():
    from types import SimpleNamespace

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    batches = [{"input_rows": 3600, "duration_s": 1.0, "started_at": t0, "finished_at": t0 + timedelta(seconds=1)},
               {"input_rows": 3600, "duration_s": 1.0, "started_at": t0 + timedelta(seconds=9),
                "finished_at": t0 + timedelta(seconds=10)}]
    costs = SimpleNamespace(currency="USD", vcpu_hour=1.0, memory_gb_hour=0.5, vcpus=2, memory_gb=4,
                            fixed_per_hour=1.0)
    cost = data.cost_estimate(batches, costs)
    assert cost["per_hour"] == 5.0
    assert cost["capacity_events_per_s"] == 3600.0 and cost["observed_events_per_s"] == 720.0
    # 5 per hour / (3600 events/s * 3600 s) per event, times 1M
    assert cost["per_million_at_capacity"] == pytest.approx(5 / (3600 * 3600) * 1e6, abs=1e-4)
    assert cost["per_million_observed"] == pytest.approx(5 / (720 * 3600) * 1e6, abs=1e-4)
    assert data.cost_estimate([], costs) is None


def test_model_view_promote_and_rollback(app_ctx, seeded):  # noqa: F811
    status, options, version, message, summary, f1, importances, confusion, history = model_view(app_ctx, None, None)
    assert status is None and options == ["v0002", "v0001"] and version == "v0002"
    assert list(confusion.data[0].x)[0] == "regular" and len(f1.data[0].x) == 10
    assert importances.data[0].y[-1] == "amount"  # largest last in a horizontal bar chart
    text = str(summary)
    assert "alert threshold" in text and "0.85" in text
    assert "out of profile (eu_marketplace): gaming" in text and "recall 0.9900, precision 0.9600" in text
    _, _, version, message, *_ = model_view(app_ctx, "v0001", "promote")
    assert version == "v0001" and "now v0001" in message
    assert Registry(str(seeded.lake / "models")).current_version() == "v0001"
    with psycopg.connect(seeded.dsn) as conn:
        assert conn.execute("SELECT version FROM model_versions WHERE is_current").fetchall() == [("v0001",)]
    _, _, version, message, *_ = model_view(app_ctx, "v0001", "rollback")
    assert version == "v0002" and Registry(str(seeded.lake / "models")).current_version() == "v0002"


def test_postgres_down_says_so_and_shows_nothing(seeded):  # noqa: F811
    environ = {**seeded.environ,
               "FRAUD_POSTGRES_DSN": f"postgresql://127.0.0.1:{free_port()}/fraud?password=secret-canary"}
    app = create_app("conf/local.yaml", environ)
    context = app.server.extensions["fraud_dash"]
    status, kpis, alerts_fig, events_fig, feed = live_view(context, data.FeedFilter())
    text = str(status)
    assert "PostgreSQL unavailable" in text and "127.0.0.1" in text and "secret-canary" not in text
    assert kpis == [] and feed == [] and alerts_fig.data == () and events_fig.data == ()
    status, cost, *figs, upkeep = pipeline_view(context, "1h")
    assert "PostgreSQL unavailable" in str(status) and cost == [] and all(f.data == () for f in figs)
    assert upkeep is None
    status, current, history = loadtest_view(context, None)
    assert "PostgreSQL unavailable" in str(status) and history == []


def test_registry_down_says_so(seeded, tmp_path):  # noqa: F811
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    environ = {**seeded.environ, "FRAUD_LAKE_ROOT": str(blocker)}
    context = create_app("conf/local.yaml", environ).server.extensions["fraud_dash"]
    status, options, *_ = model_view(context, None, None)
    assert "model registry unavailable" in str(status) and options == []
    assert app_config(environ).lake_root == str(blocker)


# Months of a deployment: 200,000 alerts over 92 days (a few % still open, most closed by a
# verdict), five related transactions each (a million rows: 14 hours of the simulator's alerted events
# at normal load, months at real fraud rates), an action per closed alert, a batch every 2.5 s for a week.
_LARGE_SEED = [
    "INSERT INTO alerts (alert_id, domain, actor_id, alert_type, episode_start, first_seen, last_seen, txn_count,"
    " total_amount, max_score, severity, class_probabilities, model_version, test_id, created_at, status, status_at)"
    " SELECT 'a' || i, (ARRAY['gaming','fintech','ecommerce'])[1 + i % 3], 'actor-' || (i % 40000),"
    " 'fraud_structuring', ts, ts, ts, 5, 200, 0.9, (ARRAY['critical','high','medium','low'])[1 + i % 4], '{}', 'v1',"
    " 'run-' || (i / 5000), ts, CASE WHEN i % 50 = 0 THEN 'open' WHEN i % 2 = 0 THEN 'false_positive'"
    " ELSE 'confirmed_fraud' END, CASE WHEN i % 50 = 0 THEN NULL ELSE ts + interval '1 hour' END"
    " FROM generate_series(1, 200000) AS i, LATERAL (SELECT now() - i * interval '40 seconds' AS ts) AS t",
    "INSERT INTO alert_transactions (alert_id, transaction_id, event_time, amount, fraud_score, predicted_class,"
    " class_probabilities, produced_at, query_id, batch_id)"
    " SELECT alert_id, alert_id || '-' || k, last_seen, 100, 0.9, alert_type, '{}', last_seen, 'q',"
    " (extract(epoch FROM last_seen) / 2.5)::bigint FROM alerts, generate_series(1, 5) AS k",
    "INSERT INTO alert_actions (alert_id, action, actor, at) SELECT alert_id, 'confirm_fraud', 'ana', status_at"
    " FROM alerts WHERE status <> 'open'",
    "INSERT INTO batch_metrics (query_id, batch_id, started_at, finished_at, input_rows, input_rows_by_topic,"
    " bronze_rows, silver_rows, quarantine_rows, quarantine_by_reason, gold_rows, alert_rows, step_ms)"
    " SELECT 'q', b, to_timestamp(b * 2.5) - interval '2 seconds', to_timestamp(b * 2.5), 100,"
    " '{\"gaming-events\": 100}', 100, 100, 0, '{}', 100, 1, '{}'"
    " FROM generate_series((extract(epoch FROM now() - interval '7 days') / 2.5)::bigint,"
    " (extract(epoch FROM now()) / 2.5)::bigint) AS b",
    "INSERT INTO quality_results (run_id, batch_id, suite, engine, validated_at, success, expectations,"
    " failed_expectations) SELECT 'q', b, 'events', 'spark', now() - b * interval '2.5 seconds', b % 100 <> 0, 10,"
    " (b % 100 = 0)::int FROM generate_series(1, 240000) AS b",
    "INSERT INTO simulation_runs (test_id, started_at, status, domains, load_level, seed) VALUES"
    " ('run-3', now(), 'running', ARRAY['gaming'], 'normal', 1)",
    "ANALYZE",
]
_LARGE_TABLES = {"alerts", "alert_transactions", "alert_actions", "batch_metrics", "quality_results"}


def test_the_dash_queries_use_indexes_on_large_tables(stack, unique_name):
    """Every query the pages run, on tables seeded to months of traffic: no sequential scan of a large
    table (the plans PostgreSQL chooses with statistics of these sizes)."""
    from psycopg import sql

    from pipeline_support import create_database, without_user

    dsn = create_database(stack["postgres"]["dsn"], unique_name("large").replace("-", "_"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in _LARGE_SEED:
            conn.execute(statement)

    class ExplainingSource(data.DataSource):
        """Runs each query, and records the tables its plan reads by a sequential scan."""
        seq_scans: dict[str, set[str]] = {}

        def rows(self, query, params=None):
            with self.connection() as conn:
                (plan,), = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(query)), params).fetchall()
            self.seq_scans[" ".join(query.split())[:90]] = set(_seq_scanned(plan[0]["Plan"]))
            return super().rows(query, params)

    src = ExplainingSource(app_config({**os.environ, "FRAUD_POSTGRES_DSN": without_user(dsn)}))
    try:
        assert data.live_kpis(src, 60)["open_by_severity"]["critical"] > 0
        data.alerts_per_minute(src, 60)
        data.events_per_minute(src, 60)
        feed = data.alert_feed(src, data.FeedFilter(window_min=data.TIME_RANGES["7d"]), 100)
        assert len(feed) == 100
        detail = data.alert_detail(src, feed[50]["alert_id"])
        assert len(detail["transactions"]) == 5 and detail["timeline"]
        page = data.alerts_page(src, domains=("fintech",), severities=data.SEVERITIES, statuses=("open",),
                                since=None, limit=50)  # the alert API (dash_app.api)
        assert len(page.alerts) == 50 and page.last is not None
        assert data.alerts_page(src, domains=("fintech",), severities=data.SEVERITIES, statuses=data.STATUSES,
                                since=datetime.now(timezone.utc) - timedelta(days=30), limit=500,
                                before=page.last[0], before_id=page.last[1]).alerts
        data.batch_history(src, 60)
        data.latest_upkeep(src)
        data.quality_history(src, 60)
        data.quality_failures(src, 60)
        assert data.load_test_result(src, "run-3")["alerts_raised"] == 5000
    finally:
        src.close()
    assert len(ExplainingSource.seq_scans) >= 17
    scanned = {q: tables & _LARGE_TABLES for q, tables in ExplainingSource.seq_scans.items() if tables & _LARGE_TABLES}
    assert scanned == {}


def _seq_scanned(node: dict):
    if node["Node Type"] == "Seq Scan":
        yield node["Relation Name"]
    for child in node.get("Plans", []):
        yield from _seq_scanned(child)
