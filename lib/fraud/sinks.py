"""The per-micro-batch sink: Delta bronze / quarantine / silver / gold and PostgreSQL alerts.

``BatchWriter`` is the ``foreachBatch`` function. Each Delta append carries
``txnAppId`` (the streaming query id) and ``txnVersion`` (the batch id), so a batch
replayed after a crash is skipped by Delta; the PostgreSQL side is guarded by its
``sink_progress`` row (``fraud.alerts``). Either may run first; together they give
exactly-once effects with Kafka offsets kept in the query checkpoint.

Every Kafka record lands in bronze and in exactly one of silver or quarantine.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraud.alerts import AlertSink
from fraud.config import Config
from fraud.features import VELOCITY_FEATURES, with_static_features, with_velocity_batch
from fraud.metrics import BatchMetrics
from fraud.parse import flatten_event, topic_domain, with_extra_fields, with_parsed_event, with_typed_event
from fraud.quality import StreamQuality
from fraud.score import ModelHolder, score_silver, with_scored_at

log = logging.getLogger(__name__)

BRONZE_COLUMNS = ["kafka_key", "value", "topic", "partition", "offset", "kafka_timestamp", "domain", "ingest_time",
                  "ingest_date", "batch_id"]
QUARANTINE_COLUMNS = ["value", "topic", "partition", "offset", "kafka_timestamp", "reasons", "ingest_time",
                      "ingest_date", "batch_id"]


def bronze(batch_df: DataFrame, config: Config, batch_id: int) -> DataFrame:
    now = F.current_timestamp()
    return batch_df.select(
        F.col("key").cast("string").alias("kafka_key"), "value", "topic", "partition", "offset",
        F.col("timestamp").alias("kafka_timestamp"), topic_domain(config).alias("domain"),
        now.alias("ingest_time"), F.to_date(now).alias("ingest_date"), F.lit(batch_id).alias("batch_id"),
    )


def quarantine(batch_df: DataFrame, batch_id: int) -> DataFrame:
    now = F.current_timestamp()
    return batch_df.filter(F.size("reasons") > 0).select(
        "value", "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp"), "reasons",
        now.alias("ingest_time"), F.to_date(now).alias("ingest_date"), F.lit(batch_id).alias("batch_id"),
    )


def silver(batch_df: DataFrame) -> DataFrame:
    """Valid, first-seen events: typed, flattened, static and velocity features (no ``batch_id``:
    a per-batch literal here would recompile this whole stage every batch; ``with_batch_id`` adds it)."""
    valid = batch_df.filter(F.size("reasons") == 0)
    # The state operator passed the raw record through; parse it again here (JVM, cheap) rather
    # than ship every typed column through Python.
    return with_static_features(flatten_event(with_extra_fields(with_typed_event(valid)), keep=VELOCITY_FEATURES))


def with_batch_id(df: DataFrame, batch_id: int) -> DataFrame:
    return df.withColumn("batch_id", F.lit(batch_id))


def silver_from_records(records_df: DataFrame, config: Config) -> DataFrame:
    """Batch path from Kafka-shaped records (key, value, topic, partition, offset, timestamp) to
    silver rows, with the stream's own parse, velocity and feature code (backfills, tests, notebooks)."""
    s = config.stream
    velocity = with_velocity_batch(with_parsed_event(records_df, config), s.velocity_window_s, s.state_buckets)
    return with_batch_id(silver(velocity), -1)


class BatchWriter:
    """``foreachBatch(batch_df, batch_id)``: all sinks of one micro-batch."""

    def __init__(self, spark: SparkSession, config: Config, checkpoint: str, models: ModelHolder, alerts: AlertSink,
                 metrics: BatchMetrics):
        self.spark = spark
        self.config = config
        self.checkpoint = checkpoint
        self.models = models
        self.alerts = alerts
        self.metrics = metrics
        self.quality = StreamQuality(config, metrics.pool)  # data quality (fraud.quality)
        self._query_id: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=5, thread_name_prefix="sink")

    @property
    def query_id(self) -> str:
        """The streaming query's id from its checkpoint: stable across restarts, so it names Delta txns."""
        if self._query_id is None:
            from pyarrow import fs

            filesystem, root = fs.FileSystem.from_uri(
                self.checkpoint if "://" in self.checkpoint else f"file://{self.checkpoint}")
            with filesystem.open_input_stream(f"{root}/metadata") as stream:
                self._query_id = json.loads(stream.read())["id"]
        return self._query_id

    def _append(self, df: DataFrame, table: str, batch_id: int, partition_by: list[str]) -> None:
        (df.write.format("delta").mode("append")
         .option("txnAppId", self.query_id).option("txnVersion", batch_id)
         .partitionBy(*partition_by).save(self.config.table_path(table)))

    def _run_writes(self, writes: dict, steps: dict) -> None:
        """Run the Delta appends, concurrently when ``stream.parallel_sinks`` (they touch different tables
        and each is idempotent on its own, so order does not matter for exactly-once)."""
        def timed(name, write):
            t0 = time.perf_counter()
            write()
            steps[name] = round((time.perf_counter() - t0) * 1000, 1)

        if not self.config.stream.parallel_sinks:
            for name, write in writes.items():
                timed(name, write)
            return
        for future in [self._pool.submit(timed, name, write) for name, write in writes.items()]:
            future.result()

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        """Order matters for detection latency, not for correctness: alerts are committed to
        PostgreSQL as soon as the batch is scored, and the Delta appends follow."""
        started = datetime.now(timezone.utc)
        steps: dict[str, float] = {}

        def step(name: str, t0: float) -> float:
            now = time.perf_counter()
            steps[name] = round((now - t0) * 1000, 1)
            return now

        t = time.perf_counter()
        # Data quality: rows failing a row-level expectation get reason "expectation:<name>" (-> quarantine).
        batch_df = self.quality.with_expectation_reasons(batch_df).persist()
        counts = batch_df.groupBy("topic", (F.size("reasons") == 0).alias("ok")).count().collect()
        t = step("state", t)
        if not counts:
            batch_df.unpersist()
            return

        silver_df = silver(batch_df).persist()
        model = self.models.current()
        gold_df = score_silver(silver_df, model, self.config).persist() if model else None
        alert_rows = []
        if gold_df is not None:
            alert_rows = [_utc(r.asDict()) for r in gold_df.filter("is_alert").collect()]
        t = step("score", t)
        result = self.alerts.write(self.query_id, batch_id, alert_rows)
        t = step("alerts", t)

        quarantine_df = quarantine(batch_df, batch_id)
        has_rejects = any(not r["ok"] for r in counts)
        writes = {
            "bronze": lambda: self._append(bronze(batch_df, self.config, batch_id), "bronze", batch_id,
                                           ["domain", "ingest_date"]),
            "silver": lambda: self._append(with_batch_id(silver_df, batch_id), "silver", batch_id,
                                           ["domain", "event_date"]),
            "quality": lambda: self.quality.after_batch(self.query_id, batch_id, batch_df),  # results to PostgreSQL
        }
        if has_rejects:  # most batches have none; an empty Delta commit costs a second
            writes["quarantine"] = lambda: self._append(quarantine_df, "quarantine", batch_id, ["ingest_date"])
        if gold_df is not None:
            writes["gold"] = lambda: self._append(with_scored_at(gold_df), "gold", batch_id, ["domain", "event_date"])
        self._run_writes(writes, steps)
        t = step("delta", t)

        by_reason = {}
        if has_rejects:
            by_reason = {r["reason"]: r["count"] for r in quarantine_df.select(
                F.explode("reasons").alias("reason")).groupBy("reason").count().collect()}
        for df in (gold_df, silver_df, batch_df):
            if df is not None:
                df.unpersist()
        step("metrics", t)
        by_topic: dict[str, int] = {}
        for r in counts:
            by_topic[r["topic"]] = by_topic.get(r["topic"], 0) + r["count"]
        valid = sum(r["count"] for r in counts if r["ok"])
        self.metrics.record(
            query_id=self.query_id, batch_id=batch_id, started_at=started, input_rows_by_topic=by_topic,
            silver_rows=valid, quarantine_rows=sum(by_topic.values()) - valid, quarantine_by_reason=by_reason,
            gold_rows=valid if gold_df is not None else 0, alert_rows=len(alert_rows), step_ms=steps,
            model_version=model.version if model else None, alerts_applied=result.applied,
        )
        log.info("batch %d: %d records, %d valid, %d alert rows, steps %s", batch_id, sum(by_topic.values()), valid,
                 len(alert_rows), steps)


def _utc(row: dict) -> dict:
    """Spark returns naive datetimes in the session time zone (UTC); make them explicit."""
    return {k: v.replace(tzinfo=timezone.utc) if isinstance(v, datetime) and v.tzinfo is None else v
            for k, v in row.items()}
