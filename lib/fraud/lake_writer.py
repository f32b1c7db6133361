"""The lake writer: appends each micro-batch to bronze, silver, gold and quarantine behind the alert
path, in a thread of its own, from the batch's stage (``fraud.stage``). Spark commits batch N and
starts N+1 while N's Delta appends run; detection never waits for the lake. Batches that
arrive within ``stream.lake_commit_interval_s`` of each other are appended together, one Delta
commit per table for all of them: a commit costs about the same whatever its rows, and on two cores
that cost is taken from the alert path.

A batch that Spark has committed, but whose appends a crash cut short, is appended at the next start
from its stage (re-scored with the model version that scored it) before any newer batch; the stage is
deleted once every table holds the batch. Each append is marked with the query and batch ids, so a
table skips what it already holds (``fraud.lake``). A record a Delta constraint refuses is isolated
into quarantine (``fraud.isolation``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

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
    rows: pa.Table  # the record frame's rows, as the state operator produced them
    schema: StructType  # their Spark schema
    counts: BatchCounts
    silver: pa.Table
    gold: pa.Table | None  # None: no model yet

    def frame(self, spark: SparkSession) -> DataFrame:
        return spark.createDataFrame(self.rows, schema=self.schema)


class LakeWriter:
    """Appends staged batches to bronze, silver, gold and quarantine in batch order (a table's markers
    then come in batch order, which ``IdempotentAppender`` relies on), in a thread beside the stream.

    A group of batches is due ``stream.lake_commit_interval_s`` after its oldest arrived, or when it
    holds ``stream.rows_per_file`` rows, or when someone waits for the lake (``flush``, the job's end,
    back-pressure); it is committed as one append per table, marked with its newest batch. At most
    ``stream.lake_max_pending_batches`` wait: beyond that the alert path waits too (back-pressure,
    shown as its ``lake_wait`` step). After a failure it writes nothing more and the next batch fails
    with that error: the job stops, and its next start resumes from the stages."""

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
        self._arrived = threading.Condition()
        self._waiting: dict[int, tuple[float, StagedBatch]] = {}  # submitted, not yet taken: (arrival, batch)
        self._hurry = 0  # callers waiting for the lake: the waiting group is due now
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
        """Queue a batch; the milliseconds spent waiting for room (back-pressure: the writer has not taken
        the ``lake_max_pending_batches`` batches before it, beside the group it is writing)."""
        t0 = time.perf_counter()
        self.raise_failure()
        with self._arrived:
            def full() -> bool:
                return len(self._waiting) >= self.config.stream.lake_max_pending_batches

            with self._hurried(full()):
                self._arrived.wait_for(lambda: not full())
            self._waiting[batch.batch_id] = (time.monotonic(), batch)
            self._arrived.notify_all()
        self._pending.append((batch.batch_id, self._writer.submit(self._write_due, batch.batch_id)))
        return (time.perf_counter() - t0) * 1000

    def wait_for(self, batch_id: int) -> None:
        """Until queued work on ``batch_id`` or later batches is done: Spark runs a batch again (after a
        failure) into the same stage, which must not change under an append still reading it."""
        later = [future for queued_id, future in self._pending if queued_id >= batch_id]
        with self._hurried(bool(later)):
            for future in later:
                future.exception()
        self.raise_failure()

    def flush(self) -> None:
        """Until every queued batch is in the lake; raises the writer's failure."""
        with self._hurried(True):
            for _, future in list(self._pending):
                future.exception()
        self.raise_failure()

    @contextlib.contextmanager
    def _hurried(self, waiting: bool):
        """While someone waits for the lake (``waiting``), the waiting group is due at once."""
        if not waiting:
            yield
            return
        with self._arrived:
            self._hurry += 1
            self._arrived.notify_all()
        try:
            yield
        finally:
            with self._arrived:
                self._hurry -= 1

    def raise_failure(self) -> None:
        self._pending = [(b, f) for b, f in self._pending if not f.done()]
        if self._failure is not None:
            raise RuntimeError(f"the lake writer failed: {self._failure}") from self._failure

    def __enter__(self) -> "LakeWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        """Wait for every queued batch; raise the writer's failure unless another error is on its way."""
        with self._hurried(True):
            self._writer.shutdown(wait=True)
        self._tables.shutdown(wait=True)
        if exc_type is None:
            self.raise_failure()

    # --- in the writer thread -------------------------------------------------------------------

    def _recover(self, batch_id: int) -> None:
        def staged() -> StagedBatch:
            rows_df, model_version = self.stage.read(batch_id)
            model = self.models.version(model_version) if model_version else None
            rows = rows_df.toArrow()
            return StagedBatch(batch_id, rows, rows_df.schema, BatchCounts.of(rows),
                               *silver_and_gold(rows_df, model, self.config))

        self._write([batch_id], lambda: [staged()])

    def _write_due(self, batch_id: int) -> None:
        """The writer's turn for ``batch_id``: once its group is due, the group (every batch waiting, in
        batch order) is written; nothing when an earlier batch's group held it."""
        interval = self.config.stream.lake_commit_interval_s
        with self._arrived:
            if batch_id not in self._waiting:
                return
            due = self._waiting[batch_id][0] + interval
            self._arrived.wait_for(lambda: self._hurry > 0 or self._waiting_rows() >= self.config.stream.rows_per_file,
                                   timeout=max(0.0, due - time.monotonic()))
            group = [batch for _, (_, batch) in sorted(self._waiting.items())]
            self._waiting.clear()
            self._arrived.notify_all()  # room for the alert path (``submit``)
        self._write([batch.batch_id for batch in group], lambda: group)

    def _waiting_rows(self) -> int:
        return sum(batch.counts.total for _, batch in self._waiting.values())

    def _write(self, batch_ids: list[int], staged: Callable[[], list[StagedBatch]]) -> None:
        """Append the batches ``staged()`` gives, unless an earlier one failed (batch order: nothing after
        a failed batch); a failure here, in reading a stage too, stops the writer the same way."""
        if self._failure is not None:
            return
        try:
            for batch_id in batch_ids:
                crash_point("lake_behind", batch_id,
                            after=lambda: (CheckpointFiles(self.checkpoint).last_batch("commits") or -1) >= batch_id)
            batches = staged()
            attempts = self.config.stream.max_batch_attempts
            for attempt in range(1, attempts + 1):
                try:
                    steps = self._append_all(batches)
                    break
                except Exception as err:
                    if is_transient(err) or attempt == attempts:
                        raise
                    batches = self._isolate_refused(batches, err)
            for batch_id in batch_ids:
                self.stage.delete(batch_id)
            self.metrics.record_lake(self.query_id, batch_ids[-1], steps)
        except BaseException as err:
            log.exception("batch(es) %s: lake append failed", batch_ids)
            self._failure = err

    def _append_all(self, batches: list[StagedBatch]) -> dict[str, float]:
        """The batches' Delta appends: one per table, of the batches the table does not hold yet, marked
        with the newest; concurrently when ``stream.parallel_sinks`` (different tables, each idempotent on
        its own). Milliseconds per table and in all (``lake``)."""
        steps = {}
        spark = self.stage.spark

        def append(table: str, partition_by: list[str], frame: Callable[[list[StagedBatch]], DataFrame],
                   rows: Callable[[StagedBatch], int], include: Callable[[StagedBatch], bool] = lambda _: True):
            def run():
                t0 = time.perf_counter()
                held = self.appender.newest_held(table, self.query_id)
                group = [batch for batch in batches if batch.batch_id > held and include(batch)]
                if group:
                    self.appender.append(frame(group), table, self.query_id, group[-1].batch_id, partition_by,
                                         sum(rows(batch) for batch in group))
                if table == "bronze":
                    for batch in batches:
                        crash_point("after_bronze", batch.batch_id)
                steps[table] = round((time.perf_counter() - t0) * 1000, 1)
            return run

        for batch in batches:
            if batch.counts.isolated:
                self._drop_isolated(batch)

        def records(group: list[StagedBatch]) -> DataFrame:
            schema = StructType([*group[0].schema.fields, StructField("batch_id", IntegerType(), False)])
            return spark.createDataFrame(with_batch_ids([b.rows for b in group], group), schema=schema)

        writes = [append("bronze", ["domain", "ingest_date"],
                         lambda g: to_bronze(records(g), self.config, F.col("batch_id")), lambda x: x.counts.total),
                  append("silver", ["domain", "event_date"],
                         lambda g: spark.createDataFrame(with_batch_ids([b.silver for b in g], g)),
                         lambda x: x.counts.valid)]
        if any(batch.gold is not None for batch in batches):
            writes.append(append("gold", ["domain", "event_date"],
                                 lambda g: with_scored_at(spark.createDataFrame(with_batch_ids([b.gold for b in g], g)),
                                                          "batch_id"),
                                 lambda x: x.counts.valid, lambda x: x.gold is not None))
        # Quarantine after silver and gold: a record one of them refuses (a Delta constraint) is
        # isolated into it before it is written (``_isolate_refused``). Most batches have no rejects,
        # and an empty Delta commit costs a second: none then.
        after = [append("quarantine", ["ingest_date"], lambda g: to_quarantine(records(g), F.col("batch_id")),
                        lambda x: x.counts.total - x.counts.valid, lambda x: x.counts.valid < x.counts.total)]
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

    def _isolate_refused(self, batches: list[StagedBatch], err: Exception) -> list[StagedBatch]:
        """``batches`` with the records silver's or gold's value constraints refuse isolated
        (``fraud.isolation``), the stages of those that held some written anew; ``err`` again when no
        record is refused (not a value's fault)."""
        isolated = [self._isolated_refused(batch, err) for batch in batches]
        if all(batch is None for batch in isolated):
            raise err
        for batch in isolated:
            if batch is not None:
                self.metrics.record_isolated(self.query_id, batch.batch_id, batch.counts)
        return [new or old for new, old in zip(isolated, batches)]

    def _isolated_refused(self, batch: StagedBatch, err: Exception) -> StagedBatch | None:
        """``batch`` with the records the lake refuses isolated; None when it holds none."""

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
            return None
        log.error("batch %d: %d record(s) refused by the lake (%s): isolated", b, len(positions), reason(err))
        _, model_version = self.stage.read(b)
        keys = zip(*(batch.rows.column(c).to_pylist() for c in ("topic", "partition", "offset")))
        rows = isolate(batch.rows, {i: reason(err) for i, key in enumerate(keys) if key in positions})
        self.stage.write(rows, b)
        rows_df = replace(batch, rows=rows).frame(spark)
        self.stage.write_manifest(b, rows_df, model_version)
        model = self.models.version(model_version) if model_version else None
        return StagedBatch(b, rows, batch.schema, BatchCounts.of(rows), *silver_and_gold(rows_df, model, self.config))

    def _drop_isolated(self, batch: StagedBatch) -> None:
        """Take the batch's isolated records out of silver and gold where those hold the batch already
        (the lake refused a record after one of them committed; or a crash came between): by
        transaction id, read from the raw record, within the batch's rows."""

        b = batch.batch_id
        holding = [t for t in ("silver", "gold") if self.appender.holds(t, self.query_id, b)]
        if not holding:
            return
        isolated = F.exists("reasons", lambda r: r.startswith(UNPROCESSABLE))
        ids = [r[0] for r in batch.frame(self.stage.spark).filter(isolated).select(
            F.get_json_object(F.col("value").cast("string"), "$.transaction_id")).collect() if r[0] is not None]
        for table in holding:
            if ids:
                self.appender.delete(table, (F.col("batch_id") == b) & F.col("transaction_id").isin(ids))


def with_batch_ids(tables: list[pa.Table], batches: list[StagedBatch]) -> pa.Table:
    """``tables`` (one per batch of ``batches``) as one, each row with its batch's id (``batch_id``, int32:
    the type ``with_batch_id``'s literal has)."""
    return pa.concat_tables([table.append_column("batch_id", pa.array([batch.batch_id] * table.num_rows, pa.int32()))
                             for table, batch in zip(tables, batches)], promote_options="default")
