"""Per-micro-batch metrics in PostgreSQL (``batch_metrics``), read by Dash and the benchmarks.

Detection latency is measured from each alerted event's Kafka timestamp (when the
producer created it) to the commit time of the PostgreSQL transaction that stored it
(``pg_xact_commit_timestamp``, which needs ``track_commit_timestamp = on``), not to
``now()``. Kafka lag (offsets behind the latest, summed over partitions) is copied
from each batch's progress report by a query listener (``fraud.stream.LagListener``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from fraud.db import NO_RETRY, RetryPolicy

log = logging.getLogger(__name__)

_LATENCY_SQL = """
SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms), max(ms)
FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - produced_at) * 1000 AS ms
      FROM alert_transactions WHERE query_id = %s AND batch_id = %s) AS latencies
"""


class BatchMetrics:
    def __init__(self, pool: ConnectionPool, retry: RetryPolicy = NO_RETRY):
        self.pool = pool
        self.retry = retry

    def record(self, *, query_id: str, batch_id: int, started_at: datetime, input_rows_by_topic: dict[str, int],
               silver_rows: int, quarantine_rows: int, quarantine_by_reason: dict[str, int], gold_rows: int,
               alert_rows: int, step_ms: dict[str, float], model_version: str | None, alerts_applied: bool,
               isolated_rows: int = 0, attempts: int = 1) -> None:
        """Upsert one batch's row (a replayed batch overwrites its own row, nothing else)."""
        total = sum(input_rows_by_topic.values())

        def upsert(conn) -> None:
            with conn.transaction():
                p50 = p95 = p99 = worst = None
                if alerts_applied and alert_rows:
                    (quantiles, worst), = conn.execute(_LATENCY_SQL, (query_id, batch_id)).fetchall()
                    if quantiles:
                        p50, p95, p99 = quantiles
                conn.execute(
                    "INSERT INTO batch_metrics (query_id, batch_id, started_at, finished_at, input_rows,"
                    " input_rows_by_topic, bronze_rows, silver_rows, quarantine_rows, quarantine_by_reason, gold_rows,"
                    " alert_rows, step_ms, model_version, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_max_ms,"
                    " isolated_rows, attempts)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (query_id, batch_id) DO UPDATE SET finished_at = EXCLUDED.finished_at,"
                    " step_ms = EXCLUDED.step_ms, silver_rows = EXCLUDED.silver_rows,"
                    " quarantine_rows = EXCLUDED.quarantine_rows, quarantine_by_reason = EXCLUDED.quarantine_by_reason,"
                    " gold_rows = EXCLUDED.gold_rows, isolated_rows = EXCLUDED.isolated_rows,"
                    " attempts = EXCLUDED.attempts,"
                    " latency_p50_ms = coalesce(EXCLUDED.latency_p50_ms, batch_metrics.latency_p50_ms),"
                    " latency_p95_ms = coalesce(EXCLUDED.latency_p95_ms, batch_metrics.latency_p95_ms),"
                    " latency_p99_ms = coalesce(EXCLUDED.latency_p99_ms, batch_metrics.latency_p99_ms),"
                    " latency_max_ms = coalesce(EXCLUDED.latency_max_ms, batch_metrics.latency_max_ms)",
                    (query_id, batch_id, started_at, datetime.now(timezone.utc), total, Jsonb(input_rows_by_topic), total,
                     silver_rows, quarantine_rows, Jsonb(quarantine_by_reason), gold_rows, alert_rows, Jsonb(step_ms),
                     model_version, p50, p95, p99, worst, isolated_rows, attempts),
                )

        self.retry.run(self.pool, upsert, f"metrics of batch {batch_id}")

    def record_isolated(self, query_id: str, batch_id: int, counts) -> None:
        """The batch's row counts again after the lake writer isolated records it refused
        (``counts``: ``fraud.counts.BatchCounts``)."""
        def update(conn) -> None:
            conn.execute("UPDATE batch_metrics SET silver_rows = %s, gold_rows = least(gold_rows, %s),"
                         " quarantine_rows = %s, quarantine_by_reason = %s, isolated_rows = %s"
                         " WHERE query_id = %s AND batch_id = %s",
                         (counts.valid, counts.valid, counts.total - counts.valid, Jsonb(counts.by_reason()),
                          counts.isolated, query_id, batch_id))

        self.retry.run(self.pool, update, f"isolated rows of batch {batch_id}")

    def record_lake(self, query_id: str, batch_id: int, step_ms: dict[str, float]) -> None:
        """Add the lake writer's steps (milliseconds per table, ``lake`` in all) to the batch's row.

        Best effort: the batch is in the lake when this runs, and a database outage that outlasts
        the retries loses these timings only. Failing here would stop the lake writer (and, through
        it, the stream) over an outage the alert path rides out on its own."""
        def update(conn) -> None:
            conn.execute("UPDATE batch_metrics SET step_ms = step_ms || %s WHERE query_id = %s AND batch_id = %s",
                         (Jsonb(step_ms), query_id, batch_id))

        try:
            self.retry.run(self.pool, update, f"lake metrics of batch {batch_id}")
        except psycopg.OperationalError as err:  # a pool timeout included
            log.warning("batch %d: lake step timings not recorded, PostgreSQL unavailable (%s)", batch_id,
                        type(err).__name__)

    def record_lag(self, query_id: str, progress: dict | None) -> None:
        """Copy the Kafka lag and the state store's size of a finished batch from its progress report."""
        if not progress:
            return
        if hasattr(progress, "json"):  # StreamingQueryProgress object (PySpark 4) -> plain dict
            progress = json.loads(progress.json)
        lag = sum(int(float((source.get("metrics") or {}).get("maxOffsetsBehindLatest", 0)))
                  for source in progress.get("sources", []))
        operators = progress.get("stateOperators") or []
        state_rows = sum(op.get("numRowsTotal") or 0 for op in operators) if operators else None
        state_memory = sum(op.get("memoryUsedBytes") or 0 for op in operators) if operators else None
        self._store_lag(query_id, progress["batchId"], lag, state_rows, state_memory)
        log.info("batch %s progress: durations %s, state rows %s, state commit %s ms, state memory %s bytes",
                 progress["batchId"], progress.get("durationMs"), state_rows,
                 sum(op.get("commitTimeMs") or 0 for op in operators), state_memory)

    def _store_lag(self, query_id: str, batch_id: int, lag: int, state_rows: int | None = None,
                   state_memory_bytes: int | None = None) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE batch_metrics SET kafka_lag = %s, state_rows = %s, state_memory_bytes = %s"
                         " WHERE query_id = %s AND batch_id = %s",
                         (lag, state_rows, state_memory_bytes, query_id, batch_id))
