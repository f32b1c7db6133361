"""Everything the pages read or write: parameterised queries through one pool, the model
registry, and the load-test subprocesses.

Nothing here ever makes data up. When PostgreSQL (or the registry) cannot be reached,
the call raises ``SourceDown`` with one line saying which source and why (never a
password); the pages show that line instead of figures.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from fraud.cli import UserError
from fraud.config import DOMAINS, Config
from fraud.severity import LEVELS

log = logging.getLogger(__name__)

SEVERITIES = LEVELS  # fraud.severity: the one ladder
STATUSES = ("open", "acknowledged", "confirmed_fraud", "false_positive")
# Time-range filter choices, in minutes.
TIME_RANGES = {"15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080}
MAX_LOAD_TEST_S = 3600


class SourceDown(Exception):
    """A data source (PostgreSQL, the model registry) cannot be read right now."""


class DataSource:
    """The app's one PostgreSQL pool, opened on first use and reopened after the server comes back."""

    def __init__(self, config: Config):
        self.config = config
        self._pool: ConnectionPool | None = None
        self._dsn: str | None = None
        self._lock = threading.Lock()

    @property
    def dsn(self) -> str:
        """The DSN (no password: local stack via pgpass, RDS via Secrets Manager)."""
        if self._dsn is None:
            from fraud.db import postgres_dsn

            try:
                self._dsn = postgres_dsn(self.config, "dash")
            except UserError as err:
                raise SourceDown(f"PostgreSQL unavailable: {err}") from None
        return self._dsn

    def _open_pool(self) -> ConnectionPool:
        from fraud.db import connect, make_pool

        with self._lock:
            if self._pool is None:
                # A direct connect first: fails in one round trip with libpq's reason when the
                # server is down, where a pool would keep retrying in the background.
                try:
                    connect(self.dsn, connect_timeout=self.config.postgres.connect_timeout_s).close()
                    self._pool = make_pool(self.config, self.dsn)
                except (UserError, PoolTimeout) as err:
                    self._dsn = None  # the local stack may come back on other ports
                    raise SourceDown(f"PostgreSQL unavailable: {err}") from None
            return self._pool

    @contextmanager
    def connection(self):
        pool = self._open_pool()
        try:
            with pool.connection(timeout=self.config.postgres.connect_timeout_s) as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as err:
            self.close()
            raise SourceDown(f"PostgreSQL unavailable: {str(err).strip().splitlines()[-1]}") from None

    def rows(self, query: str, params=None) -> list[dict]:
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def close(self) -> None:
        with self._lock:
            pool, self._pool, self._dsn = self._pool, None, None
        if pool is not None:
            pool.close()


# --- live page -------------------------------------------------------------------------

_EVENTS_BY_TOPIC_SQL = """
SELECT t.key AS topic, sum(t.value::bigint) AS events
FROM batch_metrics b CROSS JOIN LATERAL jsonb_each_text(b.input_rows_by_topic) AS t
WHERE b.finished_at >= now() - make_interval(mins => %(mins)s)
GROUP BY t.key
"""

_LATEST_BATCH_SQL = """
SELECT kafka_lag, finished_at, model_version, extract(epoch FROM now() - finished_at) AS age_s
FROM batch_metrics ORDER BY finished_at DESC LIMIT 1
"""

# Detection latency of every alerted event committed in the window: Kafka timestamp -> commit.
_P95_SQL = """
SELECT percentile_cont(0.95) WITHIN GROUP (
           ORDER BY extract(epoch FROM pg_xact_commit_timestamp(t.xmin) - t.produced_at) * 1000) AS p95_ms,
       count(*) AS alerted_events
FROM alert_transactions t JOIN batch_metrics b USING (query_id, batch_id)
WHERE b.finished_at >= now() - make_interval(mins => %(mins)s)
"""


def live_kpis(src: DataSource, window_min: int) -> dict:
    """Rates over the trailing window, open alerts by severity, the latest batch's lag and model."""
    params = {"mins": window_min}
    by_topic = {r["topic"]: int(r["events"]) for r in src.rows(_EVENTS_BY_TOPIC_SQL, params)}
    alerts = src.rows("SELECT count(*) AS n FROM alerts WHERE created_at >= now() - make_interval(mins => %(mins)s)",
                      params)[0]["n"]
    open_rows = src.rows("SELECT severity, count(*) AS n FROM alerts WHERE status = 'open' GROUP BY severity")
    latest = src.rows(_LATEST_BATCH_SQL)
    latency = src.rows(_P95_SQL, params)[0]
    current = src.rows("SELECT version FROM model_versions WHERE is_current")
    domain_of = {topic: domain for domain, topic in src.config.kafka.topics.items()}
    events = {d: 0 for d in DOMAINS}
    for topic, n in by_topic.items():
        events[domain_of.get(topic, topic)] = events.get(domain_of.get(topic, topic), 0) + n
    open_by_severity = {s: 0 for s in SEVERITIES}
    open_by_severity.update({r["severity"]: r["n"] for r in open_rows})
    return {
        "window_min": window_min,
        "events_per_min": {d: round(n / window_min, 1) for d, n in events.items()},
        "alerts_per_min": round(alerts / window_min, 2),
        "open_by_severity": open_by_severity,
        "kafka_lag": latest[0]["kafka_lag"] if latest else None,
        "last_batch_age_s": float(latest[0]["age_s"]) if latest else None,
        "p95_latency_ms": None if latency["p95_ms"] is None else round(float(latency["p95_ms"]), 1),
        "alerted_events": latency["alerted_events"],
        "model_in_use": latest[0]["model_version"] if latest else None,
        "model_current": current[0]["version"] if current else None,
    }


def alerts_per_minute(src: DataSource, window_min: int) -> list[dict]:
    return src.rows(
        "SELECT date_trunc('minute', created_at) AS minute, domain, count(*) AS n FROM alerts"
        " WHERE created_at >= now() - make_interval(mins => %(mins)s) GROUP BY 1, 2 ORDER BY 1, 2",
        {"mins": window_min})


def events_per_minute(src: DataSource, window_min: int) -> list[dict]:
    rows = src.rows(
        "SELECT date_trunc('minute', b.finished_at) AS minute, t.key AS topic, sum(t.value::bigint) AS n"
        " FROM batch_metrics b CROSS JOIN LATERAL jsonb_each_text(b.input_rows_by_topic) AS t"
        " WHERE b.finished_at >= now() - make_interval(mins => %(mins)s) GROUP BY 1, 2 ORDER BY 1, 2",
        {"mins": window_min})
    domain_of = {topic: domain for domain, topic in src.config.kafka.topics.items()}
    return [{"minute": r["minute"], "domain": domain_of.get(r["topic"], r["topic"]), "n": int(r["n"])} for r in rows]


@dataclass(frozen=True)
class FeedFilter:
    domains: tuple[str, ...] = DOMAINS
    severities: tuple[str, ...] = SEVERITIES
    statuses: tuple[str, ...] = STATUSES
    # Empty: every type.
    types: tuple[str, ...] = ()
    window_min: int = 60
    # "newest" first, or by "loss": the expected loss that severity ranks by, highest first.
    order: str = "newest"


_FEED_SQL = """
SELECT alert_id, last_seen, domain, alert_type, severity, status, max_score, txn_count, total_amount, actor_id,
       raised_by, expected_loss_usd
FROM alerts
WHERE last_seen >= now() - make_interval(mins => %(mins)s)
  AND domain = ANY(%(domains)s) AND severity = ANY(%(severities)s) AND status = ANY(%(statuses)s)
  AND (cardinality(%(types)s::text[]) = 0 OR alert_type = ANY(%(types)s))
ORDER BY CASE WHEN %(by_loss)s THEN expected_loss_usd END DESC NULLS LAST, last_seen DESC LIMIT %(limit)s
"""


def alert_feed(src: DataSource, flt: FeedFilter, limit: int) -> list[dict]:
    """The newest alerts matching every filter (a filter with nothing selected matches nothing)."""
    return src.rows(_FEED_SQL, {"mins": flt.window_min, "domains": list(flt.domains),
                                "severities": list(flt.severities), "statuses": list(flt.statuses),
                                "types": list(flt.types), "by_loss": flt.order == "loss", "limit": limit})


# --- alert detail --------------------------------------------------------------------

def alert_detail(src: DataSource, alert_id: str) -> dict | None:
    """The alert, its related transactions, the actor's alerted events across alerts, and its actions
    (newest first)."""
    record = alert_record(src, alert_id)
    if record is None:
        return None
    alert = {k: v for k, v in record.items() if k not in ("transactions", "actions")}
    return {
        "alert": alert,
        "transactions": record["transactions"],
        "timeline": src.rows(
            "SELECT t.event_time, t.amount, t.fraud_score, t.predicted_class, a.alert_id"
            " FROM alert_transactions t JOIN alerts a USING (alert_id)"
            " WHERE a.domain = %s AND a.actor_id = %s ORDER BY t.event_time LIMIT 5000",
            (alert["domain"], alert["actor_id"])),
        "actions": record["actions"][::-1],
    }


_ALERTS_PAGE_SQL = """
SELECT alert_id, domain, actor_id, alert_type, severity, status, max_score, txn_count, total_amount, first_seen,
       last_seen, model_version, status_by, status_at, raised_by, expected_loss_usd
FROM alerts
WHERE domain = ANY(%(domains)s) AND severity = ANY(%(severities)s) AND status = ANY(%(statuses)s)
  AND (%(since)s::timestamptz IS NULL OR last_seen >= %(since)s)
  AND (%(before)s::timestamptz IS NULL OR last_seen < %(before)s
       OR (last_seen = %(before)s AND alert_id < %(before_id)s::text))
ORDER BY last_seen DESC, alert_id DESC LIMIT %(limit)s
"""


@dataclass(frozen=True)
class AlertsPage:
    alerts: list[dict]
    # (last_seen, alert_id) of the page's last alert when more follow: where the next page starts.
    last: tuple[datetime, str] | None


def alerts_page(src: DataSource, *, domains, severities, statuses, since: datetime | None, limit: int,
                before: datetime | None = None, before_id: str | None = None) -> AlertsPage:
    """Alerts newest first (ties by id, descending), from the position (``before``, ``before_id``) a
    previous page ended at: last seen before ``before``, or then with a smaller id."""
    rows = src.rows(_ALERTS_PAGE_SQL, {
        "domains": list(domains), "severities": list(severities), "statuses": list(statuses), "since": since,
        "before": before, "before_id": before_id, "limit": limit + 1})
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertsPage(rows, (rows[-1]["last_seen"], rows[-1]["alert_id"]) if more else None)


def alert_record(src: DataSource, alert_id: str, related: bool = True) -> dict | None:
    """One alert's row, with its related transactions and actions (oldest first) when ``related``."""
    found = src.rows("SELECT * FROM alerts WHERE alert_id = %s", (alert_id,))
    if not found or not related:
        return found[0] if found else None
    return found[0] | {
        "transactions": src.rows(
            "SELECT transaction_id, event_time, amount, currency, fraud_score, predicted_class, quality_flags,"
            " produced_at, batch_id, top_features, raised_by, rule_reasons, expected_loss_usd"
            " FROM alert_transactions WHERE alert_id = %s ORDER BY event_time",
            (alert_id,)),
        "actions": src.rows("SELECT action, note, actor, at FROM alert_actions WHERE alert_id = %s ORDER BY at, id",
                            (alert_id,)),
    }


def apply_action(src: DataSource, alert_id: str, action: str, analyst: str, note: str | None) -> dict:
    from fraud.labels import record_action

    with src.connection() as conn:
        return record_action(conn, alert_id, action, analyst, note)


# --- load tests ------------------------------------------------------------------------

_RUNS_SQL = """
SELECT test_id, started_at, finished_at, status, domains, load_level, target_rate_per_s, fraud_rate,
       events_sent, errors, achieved_rate_per_s, fraud_share, message
FROM simulation_runs WHERE %(test_id)s::text IS NULL OR test_id = %(test_id)s
ORDER BY started_at DESC LIMIT %(limit)s
"""


def load_test_runs(src: DataSource, limit: int = 50) -> list[dict]:
    return src.rows(_RUNS_SQL, {"test_id": None, "limit": limit})


def load_test_run(src: DataSource, test_id: str) -> dict | None:
    found = src.rows(_RUNS_SQL, {"test_id": test_id, "limit": 1})
    return found[0] if found else None


def load_test_result(src: DataSource, test_id: str) -> dict | None:
    """The run row, alerts raised, and (once finished) recall/precision/latency from fraud.detection."""
    from fraud.detection import evaluate_run

    run = load_test_run(src, test_id)
    if run is None:
        return None
    alerts = src.rows("SELECT count(*) AS n FROM alerts WHERE test_id = %s", (test_id,))[0]["n"]
    evaluation = None
    if run["status"] != "running":
        try:
            evaluation = evaluate_run(src.dsn, test_id)
        except UserError as err:
            raise SourceDown(str(err)) from None
    return {"run": run, "alerts_raised": alerts, "evaluation": evaluation}


@dataclass(frozen=True)
class LoadTestRequest:
    domain: str
    load_level: str
    fraud_share: float | None
    duration_s: int


class LoadTestsBusy(UserError):
    """As many load tests as allowed are running."""


class LoadTests:
    """Simulator runs started as background subprocesses (``python -m fraud_simulator``)."""

    def __init__(self, config: Config, environ: dict[str, str], log_dir: Path):
        self.config = config
        self.environ = environ
        self.log_dir = log_dir
        self._procs: dict[str, tuple[subprocess.Popen, Path, LoadTestRequest]] = {}
        self._lock = threading.Lock()

    def validate(self, domain, load_level, fraud_share=None, duration_s=60) -> LoadTestRequest:
        """Raises UserError with a message fit for an HTTP 400."""
        if domain not in (*DOMAINS, "all"):
            raise UserError(f"domain must be one of {', '.join(DOMAINS)} or all, got {domain!r}")
        levels = self.config.simulator.load_levels_per_min
        if load_level not in levels:
            raise UserError(f"loadLevel must be one of {', '.join(levels)}, got {load_level!r}")
        if fraud_share is not None:
            if isinstance(fraud_share, bool) or not isinstance(fraud_share, (int, float)) \
                    or not 0.0 <= fraud_share <= 1.0:
                raise UserError(f"fraudShare must be a number between 0 and 1, got {fraud_share!r}")
        if isinstance(duration_s, bool) or not isinstance(duration_s, int) \
                or not 1 <= duration_s <= MAX_LOAD_TEST_S:
            raise UserError(f"durationS must be a whole number of seconds from 1 to {MAX_LOAD_TEST_S},"
                            f" got {duration_s!r}")
        return LoadTestRequest(domain, load_level, None if fraud_share is None else float(fraud_share), duration_s)

    def start(self, request: LoadTestRequest) -> str:
        """Start the simulator in the background; returns the run's test id. ``LoadTestsBusy`` when
        ``dashboard.max_concurrent_load_tests`` runs are going already."""
        with self._lock:
            running = sum(proc.poll() is None for proc, _, _ in self._procs.values())
            if running >= self.config.dashboard.max_concurrent_load_tests:
                raise LoadTestsBusy(f"{running} load tests are running (dashboard.max_concurrent_load_tests):"
                                    " wait for one to end")
            return self._start(request)

    def _start(self, request: LoadTestRequest) -> str:
        test_id = f"dash-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        cmd = [sys.executable, "-m", "fraud_simulator", "--domain", request.domain, "--load-level",
               request.load_level, "--duration", str(request.duration_s), "--test-id", test_id,
               "--config", self.config.source_path]
        if request.fraud_share is not None:
            cmd += ["--fraud-rate", str(request.fraud_share)]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{test_id}.log"
        with log_path.open("w") as out:
            # Same process group as the app: stopping the app's group (make down) stops its runs too.
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.environ)
        self._procs[test_id] = (proc, log_path, request)
        log.info("load test %s started (pid %s): %s", test_id, proc.pid, " ".join(cmd[1:]))
        return test_id

    def process_state(self, test_id: str) -> dict | None:
        """This app's subprocess for a run: running, or its exit code and last log line."""
        with self._lock:
            entry = self._procs.get(test_id)
        if entry is None:
            return None
        proc, log_path, request = entry
        code = proc.poll()
        last = ""
        if code not in (None, 0):
            lines = log_path.read_text(errors="replace").strip().splitlines()
            last = lines[-1] if lines else ""
        return {"pid": proc.pid, "running": code is None, "exit_code": code, "last_line": last,
                "duration_s": request.duration_s}

    def stop_all(self) -> None:
        """Terminate runs this app started (at shutdown and in tests)."""
        with self._lock:
            procs = list(self._procs.values())
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# --- model page ----------------------------------------------------------------------

def model_registry(config: Config) -> dict:
    """Current version, promotion history and every version's metadata, from the registry."""
    from fraud.registry import Registry

    try:
        registry = Registry.for_config(config)
        pointer = registry.pointer()
        versions = {v: registry.entry(v).metadata for v in registry.versions()}
    except (OSError, UserError) as err:
        raise SourceDown(f"model registry unavailable ({config.table_path('models')}): {err}") from None
    return {"current": pointer.get("version"), "history": pointer.get("history", []),
            "promoted_at": pointer.get("promoted_at"), "versions": versions,
            "challenger": registry.challenger_version()}


def shadow_comparison(src: DataSource, registry: dict) -> dict | None:
    """The current model against the challenger on the traffic scored by both (fraud.shadow), or
    None when no challenger was scored beside it."""
    from fraud.shadow import compare_with_challenger

    if registry["current"] is None:
        return None
    with src.connection() as conn:
        return compare_with_challenger(conn, registry["current"], registry["challenger"])


# --- pipeline page ---------------------------------------------------------------------

def rule_figures(src: DataSource, config: Config) -> list[dict]:
    """Every configured typology rule, its mode and what it raised: hits, and precision by the
    analysts' verdicts and by ground truth (fraud.shadow.rule_precision)."""
    from fraud.score import rules_of
    from fraud.shadow import rule_precision

    with src.connection() as conn:
        measured = {r["rule"]: r for r in rule_precision(conn)}
    return [{"rule": rule.name, "mode": "shadow" if rule.shadow else "alerting", "alert_type": rule.alert_type,
             **{k: v for k, v in measured.get(rule.name, {"hits": 0}).items() if k not in ("rule", "shadow")}}
            for rule in rules_of(config).rules]


def latest_drift(src: DataSource) -> list[dict]:
    """The last drift run (fraud.drift): PSI per model input and for the fraud score."""
    return src.rows("SELECT computed_at, model_version, window_start, window_end, rows, feature, psi, flagged"
                    " FROM drift_results WHERE computed_at = (SELECT max(computed_at) FROM drift_results)"
                    " ORDER BY psi DESC NULLS LAST, feature")


def batch_history(src: DataSource, window_min: int, limit: int = 2000) -> list[dict]:
    """Recent micro-batches, oldest first."""
    rows = src.rows(
        "SELECT query_id, batch_id, started_at, finished_at,"
        " extract(epoch FROM finished_at - started_at) AS duration_s, input_rows, bronze_rows, silver_rows,"
        " quarantine_rows, quarantine_by_reason, gold_rows, alert_rows, isolated_rows, attempts, step_ms,"
        " model_version, latency_p50_ms, latency_p95_ms, latency_p99_ms, kafka_lag, state_rows, state_memory_bytes"
        " FROM batch_metrics WHERE finished_at >= now() - make_interval(mins => %s)"
        " ORDER BY finished_at DESC LIMIT %s", (window_min, limit))
    for r in rows:
        r["duration_s"] = float(r["duration_s"])
    return rows[::-1]


def latest_upkeep(src: DataSource) -> dict | None:
    """The last maintenance run (jobs/maintain_lake.py): what it did and the sizes after it."""
    rows = src.rows("SELECT run_id, finished_at, lake, checkpoint_bytes, state_bytes, postgres_bytes, rows_expired,"
                    " alerts_archived FROM maintenance_runs ORDER BY finished_at DESC LIMIT 1")
    return rows[0] if rows else None


def cost_estimate(batches: list[dict], costs) -> dict | None:
    """Cost per 1M events from measured throughput and the configured hourly prices.

    - at capacity: events per second of batch processing time (what the job can do busy);
    - at the observed load: events per wall-clock second over the batches' span (the
      job and its services run, and cost, whether busy or not).
    None without batches that processed events.
    """
    events = sum(b["input_rows"] for b in batches)
    busy_s = sum(b["duration_s"] for b in batches)
    if not batches or events == 0 or busy_s <= 0:
        return None
    span_s = (batches[-1]["finished_at"] - batches[0]["started_at"]).total_seconds()
    per_hour = costs.vcpus * costs.vcpu_hour + costs.memory_gb * costs.memory_gb_hour + costs.fixed_per_hour
    capacity = events / busy_s
    observed = events / span_s if span_s > 0 else capacity
    return {
        "currency": costs.currency,
        "per_hour": round(per_hour, 4),
        "events": events,
        "capacity_events_per_s": round(capacity, 1),
        "observed_events_per_s": round(observed, 1),
        "per_million_at_capacity": round(per_hour / (capacity * 3600) * 1e6, 4),
        "per_million_observed": round(per_hour / (observed * 3600) * 1e6, 4),
    }


# --- data quality page ------------------------------------------------------------------

def quality_history(src: DataSource, window_min: int, limit: int = 2000) -> list[dict]:
    """Validations of the stream's event suite in the window (both engines), oldest first."""
    rows = src.rows(
        "SELECT run_id, batch_id, suite, engine, validated_at, success, rows_checked, rows_failed, rows_flagged,"
        " expectations, failed_expectations FROM quality_results WHERE validated_at >= now() - make_interval(mins => %s)"
        " ORDER BY validated_at DESC LIMIT %s", (window_min, limit))
    return rows[::-1]


def quality_failures(src: DataSource, window_min: int, limit: int = 20) -> list[dict]:
    """The latest failed expectations, one row each, with their examples, newest first."""
    return src.rows(
        "SELECT q.validated_at, q.run_id, q.batch_id, q.suite, q.engine, f.value->>'expectation' AS expectation,"
        " f.value->>'action' AS action,"
        " f.value->>'column' AS column, (f.value->>'unexpected')::bigint AS unexpected, f.value->'examples' AS examples"
        " FROM quality_results q CROSS JOIN LATERAL jsonb_array_elements(q.failures) AS f"
        " WHERE NOT q.success AND q.validated_at >= now() - make_interval(mins => %s)"
        " ORDER BY q.validated_at DESC, f.value->>'expectation' LIMIT %s", (window_min, limit))
