"""A micro-batch's data-quality results: what the micro-batch (``fraud.micro_batch``) stores per batch.

Every batch: per-expectation counts and examples of the rows the record path flagged or
quarantined (``fraud.quality.routing``), upserted into PostgreSQL ``quality_results`` (engine
``spark``). Every ``quality.gx_every_n_batches``-th batch: the GX checkpoint on a sample, in a
background thread, its result stored too (engine ``great_expectations``).
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud.config import Config
from fraud.db import RetryPolicy
from fraud.quality.checks import REASON_PREFIX, contract_valid
from fraud.quality.gate import QualityGateFailed
from fraud.quality.routing import ExpectationRouting
from fraud.quality.suites import EVENT_SUITE, event_suite, with_quality_columns
from fraud.quality.validator import EXAMPLES_PER_EXPECTATION, Validator, describe

log = logging.getLogger(__name__)


class QualityResults:
    """Per batch: the results to PostgreSQL; every N batches: the GX checkpoint, in the background."""

    def __init__(self, config: Config, pool: ConnectionPool):
        self.config = config
        self.pool = pool
        self.routing = ExpectationRouting(config)
        self.checks = self.routing.checks
        self.retry = RetryPolicy.of(config)
        self._validator: Validator | None = None
        self._gx_running: Future | None = None
        self._gx_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-checkpoint")

    def after_batch(self, query_id: str, batch_id: int, batch_df: DataFrame, rows_by_outcome: dict) -> dict | None:
        """Store this batch's results and start the GX checkpoint when this batch is due.

        ``batch_df`` is the batch's record frame (after ``ExpectationRouting.with_expectation_checks``);
        ``rows_by_outcome`` counts its rows per distinct (reasons, quality_flags) pair (the writer's
        one counting job computes it). The GX checkpoint runs on a copy of its sample in a background thread
        (seconds of Spark jobs per run: on the batch's path it stalled the stream, the p99
        detection latency with it), unless ``quality.fail_stream_on_failure``: then it runs here
        and a failure raises ``QualityGateFailed``, which fails the batch.
        """
        q = self.config.quality
        if not q.enabled:
            return None
        summary = self.summarize_failures(batch_df, rows_by_outcome)
        self._store(query_id, batch_id, "spark", summary)
        # The n-th batch, the 2n-th, ...: not the first, which a checkpoint's seconds of start-up (GX's
        # context, its Spark jobs) would slow while the job itself starts.
        if q.gx_every_n_batches > 0 and (batch_id + 1) % q.gx_every_n_batches == 0:
            if q.fail_stream_on_failure:
                summary["gx_success"] = self._checkpoint(query_id, batch_id, self._sample(batch_df))
            elif self._gx_running is not None and not self._gx_running.done():
                log.warning("batch %d: the previous GX checkpoint is still running; this one is skipped", batch_id)
            else:
                self._gx_running = self._gx_thread.submit(self._checkpoint, query_id, batch_id,
                                                          self._sample(batch_df))
        if q.fail_stream_on_failure and (summary["failed"] or not summary.get("gx_success", True)):
            raise QualityGateFailed(f"batch {batch_id} failed suite {EVENT_SUITE}: " + describe(summary))
        return summary

    def _sample(self, batch_df: DataFrame) -> DataFrame:
        """The rows the checkpoint validates, cached now (one small job): the batch's own rows are
        freed when the batch ends, before a background checkpoint reads them."""
        q = self.config.quality
        view_df = with_quality_columns(batch_df.filter(contract_valid(F.col("reasons"))), self.config)
        sample_df = view_df.limit(q.gx_sample_rows) if q.gx_sample_rows > 0 else view_df
        sample_df = sample_df.drop("cart_items", "extra_fields", "key", "value", "quality_flags").persist()
        sample_df.count()
        return sample_df

    def _checkpoint(self, query_id: str, batch_id: int, sample_df: DataFrame) -> bool:
        """Run the GX checkpoint on ``sample_df`` (then freed) and store its result; True if it passed."""
        try:
            gx_summary = self.validator().run(EVENT_SUITE, sample_df, f"{query_id}:{batch_id}")
            gx_summary["rows"] = sample_df.count()
        except Exception:
            log.exception("GX checkpoint of batch %d failed to run", batch_id)
            raise
        finally:
            sample_df.unpersist()
        gx_summary["rows_failed"] = None
        self._store(query_id, batch_id, "great_expectations", gx_summary)
        return gx_summary["success"]

    def drain(self, timeout_s: float = 600) -> BaseException | None:
        """Wait for a GX checkpoint still running (the stream calls it before it stops; tests too);
        the exception it failed with (already logged), if any."""
        if self._gx_running is None:
            return None
        return self._gx_running.exception(timeout=timeout_s)

    def summarize_failures(self, batch_df: DataFrame, rows_by_outcome: dict) -> dict:
        """Rows checked (the contract-valid ones), rows failing an expectation, rows scored with flags,
        the count per expectation with its action; examples from the failing rows only, so a clean
        batch costs no Spark job here."""
        checked = {(reasons, flags): n for (reasons, flags), n in rows_by_outcome.items()
                   if all(r.startswith(REASON_PREFIX) for r in reasons)}
        counts = Counter()
        for (reasons, flags), n in checked.items():
            for name in [r.removeprefix(REASON_PREFIX) for r in reasons] + list(flags):
                counts[name] += n
        examples = self._examples(batch_df) if counts else {}
        failures = [{"expectation": name, "action": self.routing.action(name), "type": expectation.type,
                     "column": expectation.column, "unexpected": counts[name], "examples": examples.get(name, [])}
                    for name, (expectation, _) in self.checks.items() if name in counts]
        return {"success": not failures, "evaluated": len(self.checks), "failed": failures,
                "rows": sum(checked.values()),
                "rows_failed": sum(n for (reasons, flags), n in checked.items() if reasons or flags),
                "rows_flagged": sum(n for (reasons, flags), n in checked.items() if flags and not reasons)}

    def _examples(self, batch_df: DataFrame) -> dict[str, list[dict]]:
        """Up to EXAMPLES_PER_EXPECTATION (transaction id, offending value) per failed expectation,
        from a bounded number of failing rows."""
        failed = F.concat(F.transform(F.filter("reasons", lambda r: r.startswith(REASON_PREFIX)),
                                      lambda r: F.substring(r, len(REASON_PREFIX) + 1, 1000)), "quality_flags")
        failing_df = with_quality_columns(batch_df.filter(contract_valid(F.col("reasons")) & (F.size(failed) > 0)),
                                          self.config)
        columns = sorted({expectation.column for expectation, _ in self.checks.values()})
        rows = (failing_df.select(failed.alias("_failed"), "transaction_id",
                                  *[F.col(c).cast("string").alias(c) for c in columns])
                .limit(EXAMPLES_PER_EXPECTATION * len(self.checks)).collect())
        examples: dict[str, list[dict]] = {}
        for row in rows:
            for name in row["_failed"]:
                found = examples.setdefault(name, [])
                if len(found) < EXAMPLES_PER_EXPECTATION:
                    found.append({"transaction_id": row["transaction_id"], "value": row[self.checks[name][0].column]})
        return examples

    def validator(self) -> Validator:
        if self._validator is None:
            self._validator = Validator([event_suite(self.config)], self.config.quality.data_docs_dir)
        return self._validator

    def _store(self, query_id: str, batch_id: int, engine: str, summary: dict) -> None:
        self.retry.run(
            self.pool, lambda conn: store_result(conn, run_id=query_id, batch_id=batch_id, suite=EVENT_SUITE,
                                                 engine=engine, summary=summary),
            f"{engine} quality result of batch {batch_id}")


def store_result(conn, *, run_id: str, batch_id: int, suite: str, engine: str, summary: dict) -> None:
    """Upsert one validation's row (a replayed batch overwrites its own row)."""
    conn.execute(
        "INSERT INTO quality_results (run_id, batch_id, suite, engine, validated_at, success, rows_checked,"
        " rows_failed, rows_flagged, expectations, failed_expectations, failures)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (run_id, batch_id, suite, engine) DO UPDATE SET validated_at = EXCLUDED.validated_at,"
        " success = EXCLUDED.success, rows_checked = EXCLUDED.rows_checked, rows_failed = EXCLUDED.rows_failed,"
        " rows_flagged = EXCLUDED.rows_flagged,"
        " expectations = EXCLUDED.expectations, failed_expectations = EXCLUDED.failed_expectations,"
        " failures = EXCLUDED.failures",
        (run_id, batch_id, suite, engine, datetime.now(timezone.utc), summary["success"], summary.get("rows"),
         summary.get("rows_failed"), summary.get("rows_flagged"), summary["evaluated"], len(summary["failed"]),
         Jsonb(summary["failed"])),
    )
