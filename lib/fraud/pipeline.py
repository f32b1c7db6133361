"""The path of a record, top to bottom in the order records move: ``DataFrame -> DataFrame`` steps
chained with ``df.transform``. The stream and every batch user (training, tests, notebooks,
benchmarks) run this one chain.

    Kafka records (key, value, topic, partition, offset, timestamp)
      -> with_reasons       parse and contract reasons (fraud.parse: what cannot be scored), then the
                            expectations (fraud.quality.routing): ``quality_flags``, or reasons where
                            configured
      -> velocity features  each actor's recent past, and what rings share: per shipping address, IP,
                            device, destination account (fraud.features.with_velocity_stream, state
                            store, merged per record on the driver; with_velocity_batch over whole
                            histories)
    ---- one micro-batch (``foreachBatch``) from here on: fraud.micro_batch.AlertPath ----
      -> to_silver          valid rows, static features, the explicit ``SILVER_COLUMNS``
      -> scores             classes, probabilities, fraud score, severity, alert flag (fraud.score: on the
                            driver in the stream, ``score_silver`` in Spark for batch users)
    and beside them, for the lake (fraud.lake_writer.LakeWriter):
      -> to_bronze          every record as it came
      -> to_quarantine      the rejected ones with their reasons

Every record lands in bronze and in exactly one of silver or quarantine.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud.config import Config
from fraud.features import with_static_features, with_velocity_batch, with_velocity_stream
from fraud.parse import parse_records, topic_domain
from fraud.schemas import (BRONZE_COLUMNS, QUARANTINE_COLUMNS, SHARED_FEATURES, SILVER_COLUMNS, SILVER_EVENT_COLUMNS,
                           VELOCITY_FEATURES)
from fraud.quality.routing import ExpectationRouting
from fraud.score import LoadedModel, score_table


def with_reasons(records_df: DataFrame, config: Config) -> DataFrame:
    """The record frame (``fraud.schemas.RECORD_COLUMNS``) plus ``quality_flags``: ``reasons`` hold what
    keeps a record from being scored (a record is valid when the list is empty), ``quality_flags``
    the expectations a valid record fails (it is scored all the same)."""
    return ExpectationRouting(config).with_expectation_checks(parse_records(records_df, config))


def stream_records(source_df: DataFrame, config: Config) -> DataFrame:
    """The Kafka source -> what each ``foreachBatch`` call receives: reasons, then velocity features
    with each actor's window in the state store."""
    s = config.stream
    # One parse task per shuffle partition, not one per Kafka partition (9 here): the parse and
    # expectation projections cannot be whole-stage compiled (``from_json`` and the higher-order
    # array functions fall back), so every task generates their code anew; for a 500-record batch
    # the stage took 601 ms in 2 tasks against 975 ms in 9 (median of 7). Each Kafka partition
    # stays whole and in order inside one task, so an actor's events still reach the state in order.
    return (source_df.coalesce(config.spark.shuffle_partitions)
            .transform(with_reasons, config)
            .transform(with_velocity_stream, s.velocity_window_s, s.state_ttl_s))


def batch_records(records_df: DataFrame, config: Config) -> DataFrame:
    """What ``foreachBatch`` would receive, computed in batch over whole actor histories from
    Kafka-shaped records (``fraud.parse.kafka_records``, or bronze)."""
    return (records_df.transform(with_reasons, config)
            .transform(with_velocity_batch, config.stream.velocity_window_s))


def is_valid() -> F.Column:
    return F.size("reasons") == 0


def to_silver(batch_df: DataFrame) -> DataFrame:
    """Valid, first-seen events: typed, flattened, velocity and static features, ``SILVER_COLUMNS``
    in order. No ``batch_id``: a per-batch literal here would recompile this whole stage every
    batch; ``with_batch_id`` adds it at the write."""
    valid_df = batch_df.filter(is_valid()).select(*SILVER_EVENT_COLUMNS, "quality_flags", *VELOCITY_FEATURES,
                                                  *SHARED_FEATURES)
    return with_static_features(valid_df).select(*SILVER_COLUMNS)


def with_batch_id(df: DataFrame, batch_id: int) -> DataFrame:
    return df.withColumn("batch_id", F.lit(batch_id))


def _ingested(batch_id: int | F.Column) -> dict[str, F.Column]:
    """``batch_id``: the batch's id, or the column that holds each row's (batches appended together)."""
    now = F.current_timestamp()
    return {"ingest_time": now, "ingest_date": F.to_date(now),
            "batch_id": batch_id if isinstance(batch_id, F.Column) else F.lit(batch_id)}


def to_bronze(batch_df: DataFrame, config: Config, batch_id: int | F.Column) -> DataFrame:
    derived = {"kafka_key": F.col("key").cast("string"), "domain": topic_domain(config), **_ingested(batch_id)}
    return batch_df.select(*[derived.get(c, F.col(c)).alias(c) for c in BRONZE_COLUMNS])


def to_quarantine(batch_df: DataFrame, batch_id: int | F.Column) -> DataFrame:
    derived = _ingested(batch_id)
    return batch_df.filter(~is_valid()).select(*[derived.get(c, F.col(c)).alias(c) for c in QUARANTINE_COLUMNS])


def silver_from_records(records_df: DataFrame, config: Config) -> DataFrame:
    """Silver rows from Kafka-shaped records, exactly as the stream writes them (``batch_id`` -1)."""
    return batch_records(records_df, config).transform(to_silver).transform(with_batch_id, -1)


def silver_and_gold(rows_df: DataFrame, model: LoadedModel | None, config: Config):
    """A batch's silver rows (one Spark job) and, with a model, their gold rows, as Arrow tables in the
    driver: the batch is scored there (``fraud.score.score_table``), with no Spark job."""
    silver = to_silver(rows_df).toArrow()
    return silver, score_table(silver, model, config) if model else None
