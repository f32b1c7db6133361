"""The streaming job: one query over the three topics, from Kafka to Delta and PostgreSQL.

Plan: the Kafka source -> ``fraud.pipeline.stream_records`` (parse, contract and expectation
reasons, velocity features with each actor's window in RocksDB) -> ``foreachBatch``: one micro-batch
(``fraud.micro_batch.AlertPath``), then the lake writer behind it (``fraud.lake_writer.LakeWriter``).
Offsets live in the checkpoint; ``--once`` processes what is available and stops.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from fraud.alerts import AlertSink
from fraud.cli import UserError
from fraud.config import Config
from fraud.db import RetryPolicy, make_pool, postgres_dsn
from fraud.checkpoint import CheckpointLock, check_checkpoint
from fraud.kafka import spark_source_options
from fraud.metrics import BatchMetrics
from fraud.pipeline import stream_records
from fraud.quality.results import QualityResults
from fraud.registry import Registry
from fraud.score import ModelHolder
from fraud.secrets import reread_passwords
from fraud.shadow import ShadowSink
from fraud.lake_writer import LakeWriter
from fraud.micro_batch import AlertPath

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
    """Run the query until it stops (``once``) or fails. Refuses to start beside another instance
    on the same checkpoint, or on a checkpoint that does not match the tables (``fraud.checkpoint``).
    A batch failed by a PostgreSQL outage longer than the in-process retries is not the end: the
    job waits for the server (``postgres.outage_wait_s``) and restarts the query from its checkpoint."""
    checkpoint = checkpoint_location(config)
    pool = make_pool(config, postgres_dsn(config, "stream"))
    retry = RetryPolicy.of(config)
    metrics = BatchMetrics(pool, retry)
    listener = LagListener(metrics)
    spark.streams.addListener(listener)
    try:
        with CheckpointLock(pool, checkpoint, retry) as lock:
            models = ModelHolder(Registry.for_config(config), config.alerts.threshold)
            models.load_in_background()
            check_checkpoint(config, checkpoint)
            quality = QualityResults(config, pool)
            records = source(spark, config).transform(stream_records, config)
            with LakeWriter(spark, config, checkpoint, models, metrics) as lake:
                # Every batch Spark committed reaches the lake before the job ends: those a crash cut
                # short first (``recover``), those of this run when the query stops.
                lake.recover()
                writer = AlertPath(config, models, AlertSink(config, pool), metrics, quality, lake,
                                   ShadowSink(pool, retry))

                def each_batch(batch_df: DataFrame, batch_id: int) -> None:
                    lock.ensure()  # its connection may have died with a database restart
                    writer(batch_df, batch_id)

                while True:
                    query = start_query(records, each_batch, checkpoint, config.stream.trigger_interval, once)
                    if await_query(query):
                        listener.wait_for(query.lastProgress)  # the last batch's lag, before the pool closes
                        break
                    wait_for_postgres(pool.conninfo, config.postgres.outage_wait_s)
            quality.drain()
    finally:
        spark.streams.removeListener(listener)
        pool.close()


_DATA_LOSS = ("KAFKA_DATA_LOSS", "Cannot fetch offset", "Some data may have been lost")


def start_query(records: DataFrame, each_batch, checkpoint: str, trigger_interval: str, once: bool):
    writer = (records.writeStream.queryName(QUERY_NAME).foreachBatch(each_batch)
              .option("checkpointLocation", checkpoint))
    writer = writer.trigger(availableNow=True) if once else writer.trigger(processingTime=trigger_interval)
    query = writer.start()
    log.info("query %s started (%s), checkpoint %s", query.id, "once" if once else trigger_interval, checkpoint)
    return query


def await_query(query) -> bool:
    """Block until the query stops: True when it stopped, False when a PostgreSQL outage failed it.
    Kafka data loss becomes a one-line error with the way out."""
    from pyspark.errors import StreamingQueryException

    try:
        query.awaitTermination()
        return True
    except StreamingQueryException as err:
        message = str(err)
        # Spark reports it at planning (error class KAFKA_DATA_LOSS.*) or when a task cannot fetch
        # an offset (inside foreachBatch's jobs); both messages tell how to set failOnDataLoss.
        if any(marker in message for marker in _DATA_LOSS):
            first = next((line for line in message.splitlines() if any(m in line for m in _DATA_LOSS)), "")
            raise UserError(
                "Kafka no longer holds records the checkpoint has not processed yet (deleted by retention"
                f" before the job read them): {first.strip()[:300]}. The job stops rather than skip them;"
                " to skip them knowingly, set kafka.fail_on_data_loss: false (see conf/local.yaml)") from None
        if "psycopg.OperationalError" in message or "psycopg_pool.PoolTimeout" in message:
            log.error("a batch failed: PostgreSQL stayed unavailable through the retries")
            return False
        raise


def wait_for_postgres(dsn: str, timeout_s: float) -> None:
    """Until a connection succeeds (the query then restarts from its checkpoint), or a one-line error."""
    deadline = time.monotonic() + timeout_s
    delay = 1.0
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
            log.info("PostgreSQL is back: restarting the query from its checkpoint")
            return
        except psycopg.OperationalError:
            reread_passwords()  # the secret may have rotated
            if time.monotonic() + delay > deadline:
                raise UserError(f"PostgreSQL unavailable for more than postgres.outage_wait_s = {timeout_s:.0f} s;"
                                " the job stops (restart it when the database is back: it resumes from its"
                                " checkpoint)") from None
            time.sleep(delay)
            # Capped low: every second between the server's return and the next poll is a second of
            # detection latency, and one connection attempt per 5 s costs the server nothing.
            delay = min(delay * 2, 5.0)


class LagListener(StreamingQueryListener):
    """Kafka lag of every finished micro-batch, from its progress report (the last batch included,
    which a copy made at the start of the next batch would miss)."""

    def __init__(self, metrics: BatchMetrics):
        self.metrics = metrics
        self._seen = threading.Condition()
        self._last_batch = -1

    def wait_for(self, progress, timeout_s: float = 30.0) -> None:
        """Until the report of ``progress``'s batch has been handled: the listener bus delivers
        reports asynchronously, the last one possibly after the query stopped."""
        if progress is not None:
            batch_id = progress["batchId"]
            with self._seen:
                self._seen.wait_for(lambda: self._last_batch >= batch_id, timeout=timeout_s)

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        try:
            self.metrics.record_lag(str(event.progress.id), event.progress)
        except Exception:  # a metrics hiccup must not disturb the query; the batch row stays without lag
            log.exception("could not record Kafka lag of batch %s", event.progress.batchId)
        finally:
            with self._seen:
                self._last_batch = max(self._last_batch, event.progress.batchId)
                self._seen.notify_all()

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass
