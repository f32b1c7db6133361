"""The per-micro-batch writers: ``BatchWriter``, the ``foreachBatch`` function (the alert path), and
``LakeWriter``, which appends each batch to the Delta tables behind it, in a thread of its own.

The alert path of batch N: the state operator's rows come to the driver as Arrow, and so do the
valid rows' silver columns; the driver scores them (``fraud.trees``: the registered MLlib pipeline,
bit for bit, without a Spark job); alerts and ``sink_progress`` are committed to PostgreSQL; the rows
are written once, as Parquet, to the batch's stage (``<checkpoint>/lake-stage/N``); quality results
and metrics follow. Then the batch goes to the lake writer and ``foreachBatch`` returns: Spark
commits batch N and starts N+1 while N's Delta appends run. Detection never waits for the lake.

The stage is what makes that safe. A batch that Spark has committed, but whose appends a crash
cut short, is appended at the next start from its stage (re-scored with the model version that
scored it) before any newer batch; the stage is deleted once every table holds the batch. Each
append is marked with the query and batch ids, so a table skips what it already holds
(``fraud.lake``), and ``sink_progress`` does the same for PostgreSQL (``fraud.alerts``). With the
checkpoint's offsets that gives exactly-once effects.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from fraud.alerts import AlertSink
from fraud.classes import MODEL_CLASSES
from fraud.config import Config
from fraud.faults import crash_point
from fraud.features import NUMERIC_FEATURES
from fraud.guard import CheckpointFiles
from fraud.isolation import UNPROCESSABLE, culprits, is_transient, isolate, reason
from fraud.lake import LakeAppender, file_system_of
from fraud.metrics import BatchMetrics
from fraud.pipeline import to_bronze, to_quarantine, to_silver, with_batch_id
from fraud.quality.gate import QualityGateFailed
from fraud.quality.stream import StreamQuality
from fraud.score import LoadedModel, ModelHolder, score_table, with_scored_at
from fraud.shadow import ShadowBatch, ShadowSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchCounts:
    """Rows of one micro-batch per topic and per distinct (reasons, quality_flags) pair (``()``: none)."""

    by_topic: dict[str, int]
    by_outcome: dict[tuple[tuple[str, ...], tuple[str, ...]], int]

    @classmethod
    def of(cls, rows) -> "BatchCounts":
        """From the batch's rows as an Arrow table (the stage's copy, in the driver already): no Spark job."""
        by_topic: Counter = Counter()
        by_outcome: Counter = Counter()
        for topic, reasons, flags in zip(*(rows.column(c).to_pylist() for c in ("topic", "reasons", "quality_flags"))):
            by_topic[topic] += 1
            by_outcome[(tuple(reasons or ()), tuple(flags or ()))] += 1
        return cls(dict(by_topic), dict(by_outcome))

    @property
    def total(self) -> int:
        return sum(self.by_topic.values())

    @property
    def valid(self) -> int:
        return sum(n for (reasons, _), n in self.by_outcome.items() if not reasons)

    @property
    def isolated(self) -> int:
        """Rows isolated as unprocessable (``fraud.isolation``)."""
        return sum(n for (reasons, _), n in self.by_outcome.items()
                   if any(r.startswith(UNPROCESSABLE) for r in reasons))

    def by_reason(self) -> dict[str, int]:
        """Rejected rows per reason code (a row with two reasons counts under both)."""
        counts: Counter = Counter()
        for (reasons, _), n in self.by_outcome.items():
            for reason in reasons:
                counts[reason] += n
        return dict(counts)


def materialize(batch_df: DataFrame) -> pa.Table:
    """The micro-batch computed once (the one job through the state operator) and brought to the
    driver as an Arrow table, which the stage and the scoring use as is; the Spark steps that follow
    (silver's features, the quality results, the lake appends) read a frame over those rows
    (``_BatchRows.frame``).

    That frame has no lineage back to the source: a frame that kept the batch's plan (Kafka source,
    parse, quality, state operator: thousands of expression nodes) would make every later step
    re-analyze and re-optimize it on the driver. It replaces ``localCheckpoint`` plus a collect, which
    needed a private call to release its blocks; for 300 rows and their silver columns the two took
    182 against 223 ms (median of 9, warm)."""
    return batch_df.toArrow()


class Stage:
    """Each batch's rows as the state operator produced them, kept beside the checkpoint (on S3 in AWS)
    until every table holds them: ``<batch id>/rows.parquet``, then ``<batch id>/batch.json`` (the
    model version that scored them and the rows' Spark schema) when the alert path is done.

    Written from the driver with Arrow, not by a Spark write: for a 500-row batch, collecting it
    (``toArrow``) and writing one Parquet file took 44 ms against 118 ms for a Spark write (its
    commit protocol's temporary files and renames) and 237 ms with the read back (median of 10)."""

    def __init__(self, spark: SparkSession, checkpoint: str):
        self.spark = spark
        self.root = f"{checkpoint.rstrip('/')}/lake-stage"
        self.fs, self._root = file_system_of(self.root)

    def write(self, rows, batch_id: int) -> None:
        """The rows (an Arrow table), written."""
        import pyarrow.parquet as pq

        self.fs.create_dir(f"{self._root}/{batch_id}")
        pq.write_table(rows, f"{self._root}/{batch_id}/rows.parquet", filesystem=self.fs)

    @staticmethod
    def probe(rows) -> None:
        """Write the rows to memory: raises what ``write`` would for their values."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(rows, pa.BufferOutputStream())

    def seal(self, batch_id: int, rows_df: DataFrame, model_version: str | None) -> None:
        with self.fs.open_output_stream(f"{self._root}/{batch_id}/batch.json") as out:
            out.write(json.dumps({"model_version": model_version, "schema": rows_df.schema.jsonValue()}).encode())

    def read(self, batch_id: int) -> tuple[DataFrame, str | None]:
        """A sealed batch's rows and the model version that scored them."""
        from pyspark.sql.types import StructType

        with self.fs.open_input_stream(f"{self._root}/{batch_id}/batch.json") as stream:
            sealed = json.loads(stream.read())
        rows_df = self.spark.read.schema(StructType.fromJson(sealed["schema"])).parquet(
            f"{self.root}/{batch_id}/rows.parquet")
        return rows_df, sealed["model_version"]

    def batches(self) -> list[int]:
        from pyarrow import fs

        try:
            infos = self.fs.get_file_info(fs.FileSelector(self._root))
        except FileNotFoundError:
            return []
        return sorted(int(i.base_name) for i in infos if i.base_name.isdigit())

    def delete(self, batch_id: int) -> None:
        try:
            self.fs.delete_dir(f"{self._root}/{batch_id}")
        except FileNotFoundError:
            pass


def silver_and_gold(rows_df: DataFrame, model: LoadedModel | None, config: Config):
    """A batch's silver rows (one Spark job) and, with a model, their gold rows, as Arrow tables in the
    driver: the batch is scored there (``fraud.score.score_table``), with no Spark job."""
    silver = to_silver(rows_df).toArrow()
    return silver, score_table(silver, model, config) if model else None


@dataclass
class StagedBatch:
    batch_id: int
    rows_df: DataFrame
    counts: BatchCounts
    silver: object  # Arrow tables
    gold: object | None  # None: no model yet


class LakeWriter:
    """Appends staged batches to bronze, silver, gold and quarantine, one batch after another in batch
    order (a table's markers then come in batch order, which ``LakeAppender`` relies on), in a thread
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
        self.appender = LakeAppender(spark, config)
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
        self.stage.seal(b, rows_df, model_version)
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


class BatchWriter:
    """``foreachBatch(batch_df, batch_id)``: the alert path of one micro-batch, then its hand-off to the lake.

    No record stops it (``fraud.isolation``): a record whose features are not finite, or whose value
    PostgreSQL or the stage refuses, is isolated into quarantine where it fails; a batch that fails
    all the same with an error that is not transient is tried ``stream.max_batch_attempts`` times in
    all, the last after the records behind the error are isolated (found by bisection with a probe
    that writes nothing). Transient errors propagate: the stream's outage handling replays the batch."""

    def __init__(self, config: Config, models: ModelHolder, alerts: AlertSink, metrics: BatchMetrics,
                 quality: StreamQuality, lake: LakeWriter, shadow: ShadowSink):
        self.config = config
        self.models = models
        self.alerts = alerts
        self.shadow = shadow  # the challenger's predictions (fraud.shadow)
        self.metrics = metrics
        self.quality = quality  # the stream's data-quality side (fraud.quality): results and GX checkpoints
        self.lake = lake

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = datetime.now(timezone.utc)
        t = time.perf_counter()
        self.lake.wait_for(batch_id)
        rows = materialize(batch_df)  # the one job that runs the state operator
        state_ms = round((time.perf_counter() - t) * 1000, 1)
        if rows.num_rows == 0:  # no records: nothing to write anywhere
            return
        batch = _BatchRows(rows, batch_df.schema, batch_df.sparkSession, self.config)
        limit = self.config.stream.max_batch_attempts
        failure: Exception | None = None
        for attempt in range(1, limit + 1):
            if failure is not None and attempt == limit:  # the last: isolate the records behind the error first
                found = culprits(range(batch.rows.num_rows), lambda subset: self._probe(batch.subset(subset), batch_id))
                if not found:
                    raise failure  # no record makes it fail: a defect or the environment, not a value
                log.error("batch %d: %d record(s) isolated as unprocessable after %d attempts: %s", batch_id,
                          len(found), attempt - 1, sorted(set(found.values())))
                batch.isolate(found)
            try:
                return self._alert_path(batch, batch_id, started, {"state": state_ms}, attempt)
            except Exception as err:
                if is_transient(err) or isinstance(err, QualityGateFailed) or attempt == limit:
                    raise
                log.warning("batch %d: attempt %d of %d failed (%s: %s)", batch_id, attempt, limit,
                            type(err).__name__, str(err).splitlines()[0][:300] if str(err) else "")
                failure = err

    def _alert_path(self, batch: "_BatchRows", batch_id: int, started: datetime, steps: dict[str, float],
                    attempt: int) -> None:
        def step(name: str, t0: float) -> float:
            now = time.perf_counter()
            steps[name] = round((now - t0) * 1000, 1)
            return now

        t = time.perf_counter()
        model = self.models.current()
        batch.score(model)
        t = step("score", t)
        alert_rows = batch.alert_rows(model)
        t = step("explain", t)
        result = self.alerts.write(self.lake.query_id, batch_id, alert_rows)
        crash_point("after_pg_commit", batch_id)
        batch.isolate(batch.indices_of(result.isolated))  # what PostgreSQL refused (a replay: the same)
        t = step("alerts", t)

        # Detection is done; what follows makes the batch safe to hand to the lake writer.
        stage = self.lake.stage
        try:
            stage.write(batch.rows, batch_id)
        except Exception as err:
            if is_transient(err):
                raise
            batch.isolate(culprits(range(batch.rows.num_rows), lambda subset: stage.probe(batch.rows.take(subset))))
            stage.write(batch.rows, batch_id)
        counts = BatchCounts.of(batch.rows)  # all the batch's metrics and quality figures
        t = step("stage", t)
        self.quality.after_batch(self.lake.query_id, batch_id, batch.frame, counts.by_outcome)
        stage.seal(batch_id, batch.frame, model.version if model else None)
        t = step("quality", t)
        challenger = self.models.challenger() if batch.gold is not None else None
        if challenger is not None and challenger.version != model.version:
            self.shadow.write(self.lake.query_id, batch_id,
                              ShadowBatch(batch.gold, score_table(batch.silver, challenger, self.config)))
            t = step("shadow", t)

        self.metrics.record(
            query_id=self.lake.query_id, batch_id=batch_id, started_at=started, input_rows_by_topic=counts.by_topic,
            silver_rows=counts.valid, quarantine_rows=counts.total - counts.valid,
            quarantine_by_reason=counts.by_reason(), gold_rows=counts.valid if batch.gold is not None else 0,
            alert_rows=len(alert_rows), step_ms=steps, model_version=model.version if model else None,
            alerts_applied=result.applied, isolated_rows=counts.isolated, attempts=attempt,
        )
        log.info("batch %d: %d records, %d valid, %d alert rows, steps %s", batch_id, counts.total, counts.valid,
                 len(alert_rows), steps)
        crash_point("before_checkpoint_commit", batch_id)
        waited = self.lake.submit(StagedBatch(batch_id, batch.frame, counts, batch.silver, batch.gold))
        if waited >= 1:
            self.metrics.record_lake(self.lake.query_id, batch_id, {"lake_wait": round(waited, 1)})

    def _probe(self, subset: "_BatchRows", batch_id: int) -> None:
        """The alert path's record-bearing work on ``subset`` (some of the batch's rows), writing
        nothing: scoring and explaining, the alert write rolled back, the stage in memory."""
        model = self.models.current()
        subset.score(model)
        self.alerts.probe(self.lake.query_id, batch_id, subset.alert_rows(model))
        Stage.probe(subset.rows)


class _BatchRows:
    """One micro-batch's rows (the record frame as Arrow, as the state operator produced it) and what
    the alert path derives from them: the Spark frame over them, silver and gold. ``isolate`` reduces
    records to their raw Kafka columns with an ``unprocessable:`` reason (``fraud.isolation.isolate``)
    and derives the rest again, so silver and gold never hold them and quarantine does."""

    def __init__(self, rows: pa.Table, schema: StructType, spark: SparkSession, config: Config):
        self.rows = rows
        self.schema = schema
        self.spark = spark
        self.config = config
        self.model: LoadedModel | None = None
        self.silver: pa.Table | None = None
        self.gold: pa.Table | None = None
        self.frame = spark.createDataFrame(rows, schema=schema)

    def subset(self, indices) -> "_BatchRows":
        return _BatchRows(self.rows.take(list(indices)), self.schema, self.spark, self.config)

    def score(self, model: LoadedModel | None) -> None:
        """Silver (one Spark job) and gold (on the driver); a row whose features are not all finite
        (the contract rules them out: a last guard) is isolated before the model sees it."""
        self.model = model
        self.silver, self.gold = silver_and_gold(self.frame, model, self.config)
        bad = non_finite_positions(self.silver)
        if bad:
            self.isolate(self.indices_of(bad))

    def alert_rows(self, model: LoadedModel | None) -> list[dict]:
        if self.gold is None:
            return []
        return alert_rows_of(self.gold, self.silver, model, self.config.alerts.top_features)

    def indices_of(self, by_position: dict[tuple, str]) -> dict[int, str]:
        if not by_position:
            return {}
        positions = zip(*(self.rows.column(c).to_pylist() for c in ("topic", "partition", "offset")))
        return {i: by_position[p] for i, p in enumerate(positions) if p in by_position}

    def isolate(self, reasons: dict[int, str]) -> None:
        if not reasons:
            return
        self.rows = isolate(self.rows, reasons)
        self.frame = self.spark.createDataFrame(self.rows, schema=self.schema)
        if self.silver is not None:
            self.silver, self.gold = silver_and_gold(self.frame, self.model, self.config)


def non_finite_positions(silver) -> dict[tuple, str]:
    """Kafka positions of silver rows with a missing or non-finite model input, with the reason."""
    if silver.num_rows == 0:
        return {}
    features = np.column_stack([silver.column(c).to_numpy(zero_copy_only=False).astype(float)
                                for c in NUMERIC_FEATURES])
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size == 0:
        return {}
    positions = zip(*(silver.column(c).take(bad).to_pylist() for c in ("topic", "partition", "offset")))
    return {p: UNPROCESSABLE + "non_finite_features" for p in positions}


def alert_rows_of(gold, silver, model: LoadedModel, top_n: int) -> list[dict]:
    """The gold rows that alert, as ``fraud.alerts`` takes them: probabilities as a dict, and why
    (``top_features``, from the same silver rows: alert rows only, the cost stays off the others)."""
    is_alert = gold.column("is_alert")
    rows = gold.filter(is_alert).to_pylist()
    if not rows:
        return rows
    alerted = silver.filter(is_alert)
    classes = np.array([MODEL_CLASSES.index(r["predicted_class"]) for r in rows])
    positions = zip(*(alerted.column(c).to_pylist() for c in ("topic", "partition", "offset")))
    for row, top, position in zip(rows, model.mirror.top_features(alerted, classes, top_n), positions):
        row["class_probabilities"] = dict(row["class_probabilities"])
        row["top_features"] = top
        row["position"] = position  # the record's Kafka position: what isolation names (fraud.alerts)
    return rows

