"""The lake writer: appends each micro-batch to bronze, silver, gold and quarantine behind the alert
path, in a thread of its own, from the batch's stage (``fraud.stage``). Spark commits batch N and
starts N+1 while N's Delta appends run; detection never waits for the lake.

A batch that Spark has committed, but whose appends a crash cut short, is appended at the next start
from its stage (re-scored with the model version that scored it) before any newer batch; the stage is
deleted once every table holds the batch. Each append is marked with the query and batch ids, so a
table skips what it already holds (``fraud.lake``). A record a Delta constraint refuses is isolated
into quarantine (``fraud.isolation``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from fraud.config import Config
from fraud.counts import BatchCounts
from fraud.faults import crash_point
from fraud.checkpoint import CheckpointFiles
from fraud.isolation import UNPROCESSABLE, is_transient, isolate, reason
from fraud.lake import IdempotentAppender
from fraud.metrics import BatchMetrics
from fraud.pipeline import silver_and_gold, to_bronze, to_quarantine, with_batch_id
from fraud.score import ModelHolder, with_scored_at
from fraud.stage import Stage

log = logging.getLogger(__name__)


@dataclass
class StagedBatch:
    batch_id: int
    rows_df: DataFrame
    counts: BatchCounts
    silver: pa.Table
    gold: pa.Table | None  # None: no model yet


class LakeWriter:
    """Appends staged batches to bronze, silver, gold and quarantine, one batch after another in batch
    order (a table's markers then come in batch order, which ``IdempotentAppender`` relies on), in a thread
    beside the stream. At most ``stream.lake_max_pending_batches`` wait: beyond that the alert path
    waits too (back-pressure, shown as its ``lake_wait`` step). After a failure it writes nothing more
    and the next batch fails with that error: the job stops, and its next start resumes from the stages."""

    def __init__(self, spark: SparkSession, config: Config, checkpoint: str, models: ModelHolder,
                 metrics: BatchMetrics):
        self.config = config
        self.checkpoint = checkpoint
        self.models = models
        self.metrics = metrics
        self.stage = Stage(spark, checkpoint)
        self.appender = IdempotentAppender(spark, config)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake")
        self._tables = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lake-table")
        self._pending: list[tuple[int, Future]] = []
        self._failure: BaseException | None = None
        self._query_id: str | None = None

    @property
    def query_id(self) -> str:
        """The streaming query's id from its checkpoint: stable across restarts, so it marks Delta commits."""
        if self._query_id is None:
            self._query_id = CheckpointFiles(self.checkpoint).query_id()
        return self._query_id

    def recover(self) -> list[int]:
        """Queue the stages of batches Spark committed but the lake may not hold (a crash came between):
        before any batch of this run. Stages of uncommitted batches stay: Spark runs those batches
        again and writes them anew."""
        committed = CheckpointFiles(self.checkpoint).last_batch("commits")
        batches = [b for b in self.stage.batches() if committed is not None and b <= committed]
        for batch_id in batches:
            log.info("batch %d: committed by Spark, appended to the lake from its stage", batch_id)
            self._pending.append((batch_id, self._writer.submit(self._recover, batch_id)))
        return batches

    def submit(self, batch: StagedBatch) -> float:
        """Queue a batch; the milliseconds spent waiting for room (back-pressure)."""
        t0 = time.perf_counter()
        self.raise_failure()
        limit = self.config.stream.lake_max_pending_batches
        while len(self._pending) >= limit:
            self._pending.pop(0)[1].result()
        self._pending.append((batch.batch_id, self._writer.submit(self._write, batch.batch_id, lambda: batch)))
        return (time.perf_counter() - t0) * 1000

    def wait_for(self, batch_id: int) -> None:
        """Until queued work on ``batch_id`` or later batches is done: Spark runs a batch again (after a
        failure) into the same stage, which must not change under an append still reading it."""
        for queued_id, future in list(self._pending):
            if queued_id >= batch_id:
                future.exception()
        self.raise_failure()

    def flush(self) -> None:
        """Until every queued batch is in the lake; raises the writer's failure."""
        for _, future in list(self._pending):
            future.exception()
        self.raise_failure()

    def raise_failure(self) -> None:
        self._pending = [(b, f) for b, f in self._pending if not f.done()]
        if self._failure is not None:
            raise RuntimeError(f"the lake writer failed: {self._failure}") from self._failure

    def __enter__(self) -> "LakeWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        """Wait for every queued batch; raise the writer's failure unless another error is on its way."""
        self._writer.shutdown(wait=True)
        self._tables.shutdown(wait=True)
        if exc_type is None:
            self.raise_failure()

    # --- in the writer thread -------------------------------------------------------------------

    def _recover(self, batch_id: int) -> None:
        def staged() -> StagedBatch:
            rows_df, model_version = self.stage.read(batch_id)
            model = self.models.version(model_version) if model_version else None
            return StagedBatch(batch_id, rows_df, BatchCounts.of(rows_df.toArrow()),
                               *silver_and_gold(rows_df, model, self.config))

        self._write(batch_id, staged)

    def _write(self, batch_id: int, staged: Callable[[], StagedBatch]) -> None:
        """Append the batch ``staged()`` gives, unless an earlier one failed (batch order: nothing after
        a failed batch); a failure here, in reading a stage too, stops the writer the same way."""
        if self._failure is not None:
            return
        try:
            crash_point("lake_behind", batch_id,
                        after=lambda: (CheckpointFiles(self.checkpoint).last_batch("commits") or -1) >= batch_id)
            batch = staged()
            attempts = self.config.stream.max_batch_attempts
            for attempt in range(1, attempts + 1):
                try:
                    steps = self._append_all(batch)
                    break
                except Exception as err:
                    if is_transient(err) or attempt == attempts:
                        raise
                    batch = self._isolate_refused(batch, err)
                    self.metrics.record_isolated(self.query_id, batch_id, batch.counts)
            self.stage.delete(batch_id)
            self.metrics.record_lake(self.query_id, batch_id, steps)
        except BaseException as err:
            log.exception("batch %d: lake append failed", batch_id)
            self._failure = err

    def _append_all(self, batch: StagedBatch) -> dict[str, float]:
        """The batch's Delta appends, concurrently when ``stream.parallel_sinks`` (different tables, each
        idempotent on its own); milliseconds per table and in all (``lake``)."""
        b, counts, steps = batch.batch_id, batch.counts, {}
        spark = self.stage.spark

        def append(df: DataFrame, table: str, partition_by: list[str], rows: int):
            def run():
                t0 = time.perf_counter()
                self.appender.append(df, table, self.query_id, b, partition_by, rows)
                if table == "bronze":
                    crash_point("after_bronze", b)
                steps[table] = round((time.perf_counter() - t0) * 1000, 1)
            return run

        if counts.isolated:
            self._drop_isolated(batch)
        writes = [append(to_bronze(batch.rows_df, self.config, b), "bronze", ["domain", "ingest_date"], counts.total),
                  append(with_batch_id(spark.createDataFrame(batch.silver), b), "silver", ["domain", "event_date"],
                         counts.valid)]
        if batch.gold is not None:
            writes.append(append(with_batch_id(with_scored_at(spark.createDataFrame(batch.gold)), b), "gold",
                                 ["domain", "event_date"], counts.valid))
        # Quarantine after silver and gold: a record one of them refuses (a Delta constraint) is
        # isolated into it before it is written (``_isolate_refused``).
        after = []
        if counts.valid < counts.total:  # most batches have no rejects; an empty Delta commit costs a second
            after.append(append(to_quarantine(batch.rows_df, b), "quarantine", ["ingest_date"],
                                counts.total - counts.valid))
        t0 = time.perf_counter()
        for phase in (writes, after):
            if self.config.stream.parallel_sinks:
                for future in [self._tables.submit(w) for w in phase]:
                    future.result()
            else:
                for write in phase:
                    write()
        steps["lake"] = round((time.perf_counter() - t0) * 1000, 1)
        return steps

    def _isolate_refused(self, batch: StagedBatch, err: Exception) -> StagedBatch:
        """``batch`` with the records silver's or gold's value constraints refuse isolated (``fraud.isolation``),
        its stage written anew; ``err`` again when no record is refused (not a value's fault)."""
        from pyspark.sql import functions as F

        spark, b = self.stage.spark, batch.batch_id
        refused = self.appender.violations(with_batch_id(spark.createDataFrame(batch.silver), b), "silver")
        positions = {tuple(r) for r in refused.select("topic", "partition", "offset").collect()}
        if batch.gold is not None:  # gold rows are silver's, in order: their positions come from silver
            keyed = batch.gold
            for name in ("topic", "partition", "offset"):
                keyed = keyed.append_column(f"_{name}", batch.silver.column(name))
            gold_df = with_batch_id(spark.createDataFrame(keyed).withColumn("scored_at", F.current_timestamp()), b)
            refused = self.appender.violations(gold_df, "gold")
            positions |= {tuple(r) for r in refused.select("_topic", "_partition", "_offset").collect()}
        if not positions:
            raise err
        log.error("batch %d: %d record(s) refused by the lake (%s): isolated", b, len(positions), reason(err))
        _, model_version = self.stage.read(b)
        rows = batch.rows_df.toArrow()
        keys = zip(*(rows.column(c).to_pylist() for c in ("topic", "partition", "offset")))
        rows = isolate(rows, {i: reason(err) for i, key in enumerate(keys) if key in positions})
        self.stage.write(rows, b)
        rows_df = spark.createDataFrame(rows, schema=batch.rows_df.schema)
        self.stage.write_manifest(b, rows_df, model_version)
        model = self.models.version(model_version) if model_version else None
        return StagedBatch(b, rows_df, BatchCounts.of(rows), *silver_and_gold(rows_df, model, self.config))

    def _drop_isolated(self, batch: StagedBatch) -> None:
        """Take the batch's isolated records out of silver and gold where those hold the batch already
        (the lake refused a record after one of them committed; or a crash came between): by
        transaction id, read from the raw record, within the batch's rows."""
        from pyspark.sql import functions as F

        b = batch.batch_id
        holding = [t for t in ("silver", "gold") if self.appender.holds(t, self.query_id, b)]
        if not holding:
            return
        isolated = F.exists("reasons", lambda r: r.startswith(UNPROCESSABLE))
        ids = [r[0] for r in batch.rows_df.filter(isolated).select(
            F.get_json_object(F.col("value").cast("string"), "$.transaction_id")).collect() if r[0] is not None]
        for table in holding:
            if ids:
                self.appender.delete(table, (F.col("batch_id") == b) & F.col("transaction_id").isin(ids))
