"""The streaming job: one query over the three topics, from Kafka to Delta and PostgreSQL.

Plan: Kafka source -> parse + validate + data-quality reasons (JVM expressions) -> velocity
features with each actor's window in RocksDB (``transformWithState``, JVM) -> ``foreachBatch``
sinks (``fraud.sinks``).
Offsets live in the checkpoint; ``--once`` processes what is available and stops.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from fraud.alerts import AlertSink
from fraud.config import Config
from fraud.db import make_pool
from fraud.features import with_velocity_stream
from fraud.kafka import spark_source_options
from fraud.metrics import BatchMetrics
from fraud.quality import StreamQuality
from fraud.registry import Registry
from fraud.score import ModelHolder
from fraud.sinks import BatchWriter, stream_records

log = logging.getLogger(__name__)

QUERY_NAME = "fraud-stream"


def checkpoint_location(config: Config) -> str:
    return f"{config.checkpoint_root.rstrip('/')}/{QUERY_NAME}"


def source(spark: SparkSession, config: Config) -> DataFrame:
    reader = spark.readStream.format("kafka")
    for key, value in spark_source_options(config).items():
        reader = reader.option(key, value)
    return reader.load()


def run_stream(spark: SparkSession, config: Config, once: bool = False) -> None:
    """Start the query and block until it stops (``once``) or fails."""
    checkpoint = checkpoint_location(config)
    pool = make_pool(config)
    metrics = BatchMetrics(pool)
    listener = LagListener(metrics)
    spark.streams.addListener(listener)
    try:
        quality = StreamQuality(config, pool)
        writer = BatchWriter(spark, config, checkpoint, ModelHolder(Registry.for_config(config)),
                             AlertSink(config, pool), metrics, quality)
        s = config.stream
        features = with_velocity_stream(stream_records(source(spark, config), config, quality),
                                        s.velocity_window_s, s.state_ttl_s)
        stream_writer = (features.writeStream.queryName(QUERY_NAME).foreachBatch(writer)
                         .option("checkpointLocation", checkpoint))
        stream_writer = (stream_writer.trigger(availableNow=True) if once
                         else stream_writer.trigger(processingTime=s.trigger_interval))
        query = stream_writer.start()
        log.info("query %s started (%s), checkpoint %s", query.id, "once" if once else s.trigger_interval, checkpoint)
        query.awaitTermination()
        quality.drain()
    finally:
        spark.streams.removeListener(listener)
        pool.close()


class LagListener(StreamingQueryListener):
    """Kafka lag of every finished micro-batch, from its progress report (the last batch included,
    which a copy made at the start of the next batch would miss)."""

    def __init__(self, metrics: BatchMetrics):
        self.metrics = metrics

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        try:
            self.metrics.record_lag(str(event.progress.id), event.progress)
        except Exception:  # a metrics hiccup must not disturb the query; the batch row stays without lag
            log.exception("could not record Kafka lag of batch %s", event.progress.batchId)

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass
