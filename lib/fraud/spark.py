"""The one SparkSession factory for jobs, tests, notebooks and benchmarks.

Locally it puts the cached Delta and Kafka jars on the classpath itself, so
``python ...`` and ``spark-submit jobs/...`` need no extra flags; on EMR Serverless
(``spark.master`` unset in config) the submission provides jars and master.
"""

import os
import sys

from pyspark.sql import SparkSession

from fraud.config import Config
from fraud.jars import spark_jars
from fraud.jvm import with_launch_options

# Settings that suit a 2-core machine and a streaming job; config may add or override.
_BASE_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.streaming.stateStore.providerClass":
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    # The state store's native memory bounded: RocksDB's block cache, memtables and index and
    # filter blocks of every state store in the JVM share one budget, whatever the number of actors
    # (TTL bounds the rows, this the bytes off the heap; 119 MB at 690,000 rows in the bench,
    # unbounded).
    "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage": "true",
    "spark.sql.streaming.stateStore.rocksdb.maxMemoryUsageMB": "256",
    # Checkpoint metadata: offsets, commits and state versions of the last 100 batches, older ones
    # deleted by Spark as it goes (Spark's default, fixed here because the checkpoint's size on the
    # Dash pipeline page and the soak test assume it). A restart replays at most the last batch.
    "spark.sql.streaming.minBatchesToRetain": "100",
    # Delta reads its log with this many tasks; the default 50 is pure overhead here.
    "spark.databricks.delta.snapshotPartitions": "2",
    # Per-commit costs of the four tables each micro-batch appends to (measured, three 1,000-row
    # appends in parallel: 1.43 s -> 0.90 s median): no .crc checksum file (it recomputes table
    # state per commit; readers do not need it), file statistics on the leading 8 columns (the
    # keys: ids, domain, times) instead of 32, and a log checkpoint every 100 commits instead of
    # every 10 (a checkpoint stalls its batch by about a second). The two properties apply to
    # tables this code creates.
    "spark.databricks.delta.writeChecksumFile.enabled": "false",
    "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "8",
    "spark.databricks.delta.properties.defaults.checkpointInterval": "100",
    # No empty micro-batches just to expire state: TTL cleanup rides on data batches, and
    # availableNow (--once) ends when the data does.
    "spark.sql.streaming.noDataMicroBatches.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    # The parse and data-quality reasons are large expression trees; inferring filter constraints
    # through them grows without bound (minutes of planning per batch, seen in a jstack). The
    # plans here have no joins for inferred filters to help.
    "spark.sql.constraintPropagation.enabled": "false",
    # Each batch's rows come back to Spark as a local relation (fraud.micro_batch.materialize); this rule
    # would evaluate the silver, gold and bronze projections over them in the optimizer, on the
    # driver, row by row and interpreted (InterpretedMutableProjection walks a Scala List per
    # column, so each row costs the square of its ~70 columns): 20 % of the job's CPU samples in
    # bench-quick. Without it they run as compiled tasks: to_silver on 5,000 rows 562 -> 296 ms and
    # the silver append's frame 307 -> 149 ms (median of 7); silver collected plus the silver and
    # bronze appends, interleaved: 813 -> 734 ms for 1,500 rows, 759 -> 756 ms for 300 (median of 9).
    "spark.sql.optimizer.excludedRules": "org.apache.spark.sql.catalyst.optimizer.ConvertToLocalRelation",
    # PySpark records the Python call site of every Column and DataFrame call for error messages: four or five
    # Py4J round trips each, and the job's plan has thousands. Off, building it before the query
    # starts took 5.0-5.4 s instead of 6.1-7.4 s (two job starts each); no effect on a batch's cycle
    # (latency_ab, 2 runs each: 949-1,006 against 945-967 ms).
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def build_session(config: Config, app_name: str | None = None) -> SparkSession:
    """Return the active session or build one configured from ``config``."""
    builder = SparkSession.builder.appName(app_name or config.spark.app_name)
    conf = dict(_BASE_CONF)
    conf["spark.sql.shuffle.partitions"] = str(config.spark.shuffle_partitions)
    conf["spark.ui.enabled"] = str(config.spark.ui_enabled).lower()
    if config.spark.master:
        # Local run: loopback only, cached jars, driver memory before the JVM starts.
        builder = builder.master(config.spark.master)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers must run this interpreter (the venv with the fraud package).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.default.parallelism"] = str(max(2, os.cpu_count() or 2))
        if config.spark.driver_memory:
            conf["spark.driver.memory"] = config.spark.driver_memory
        conf["spark.jars"] = ",".join(str(p) for p in spark_jars())
    conf.update(config.spark.extra_conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = _get_or_create(builder, local=bool(config.spark.master))
    _quiet_loggers(spark)
    return spark


def _get_or_create(builder: SparkSession.Builder, local: bool) -> SparkSession:
    """``builder.getOrCreate()``; a local JVM it starts uses the class-data archive (``fraud.jvm``),
    through the launcher's ``SPARK_SUBMIT_OPTS`` for this call only (child processes keep theirs)."""
    before = os.environ.get("SPARK_SUBMIT_OPTS")
    if local:
        os.environ["SPARK_SUBMIT_OPTS"] = with_launch_options(before)
    try:
        return builder.getOrCreate()
    finally:
        if before is None:
            os.environ.pop("SPARK_SUBMIT_OPTS", None)
        else:
            os.environ["SPARK_SUBMIT_OPTS"] = before


# JVM loggers that log at WARN on the normal path: the Python state server warns on every
# state lookup of an actor it has not seen yet (thousands of lines per batch).
_QUIET_LOGGERS = ["org.apache.spark.sql.execution.python.streaming.TransformWithStateInPandasStateServer"]


def _quiet_loggers(spark: SparkSession) -> None:
    jvm = spark.sparkContext._jvm
    level = jvm.org.apache.logging.log4j.Level.ERROR
    for name in _QUIET_LOGGERS:
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)
