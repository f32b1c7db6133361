"""Helpers for tests that run the real job against the real stack."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml
from confluent_kafka import Consumer, TopicPartition

from fraud.config import Config, load_config
from fraud.db import migrate
from fraud.kafka import create_topics, topic_config

ROOT = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = ROOT / ".venv" / "bin" / "spark-submit"


@dataclass
class Pipeline:
    """One isolated pipeline: own topics, lake, checkpoints and database on the shared test stack."""

    root: Path
    config_path: Path
    config: Config
    dsn: str
    bootstrap: str

    def catch_up(self, spark, config_path: Path | None = None) -> None:
        """The job's ``--once`` run (everything available, then stop), in this process on the tests'
        Spark session: ``fraud.stream.run_stream``, which ``jobs/stream_fraud.py`` calls, without a
        JVM start (~25 s on 2 cores). For runs no process has to die in; a run whose exit code or
        output is under test goes through ``job_result``. What it logs is kept in a ``job-*.log``,
        like a spark-submit run's (the password canary reads them)."""
        from fraud.stream import run_stream

        config = self.config if config_path is None else load_config(config_path, environ={})
        handler = logging.FileHandler(self.new_log_path())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fraud_log = logging.getLogger("fraud")
        level = fraud_log.level
        fraud_log.addHandler(handler)
        fraud_log.setLevel(logging.INFO)
        try:
            run_stream(spark, config, once=True)
        finally:
            fraud_log.removeHandler(handler)
            fraud_log.setLevel(level)
            handler.close()

    def job_result(self, *, config_path: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
        """``spark-submit jobs/stream_fraud.py --once`` as a user runs it: exit code and output."""
        return self.spark_submit("jobs/stream_fraud.py", "--config", str(config_path or self.config_path), "--once",
                                 timeout=timeout)

    def spark_submit(self, script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        """``spark-submit script args`` to its end: exit code and output."""
        with cluster_work_removed():
            result = subprocess.run([str(SPARK_SUBMIT), script, *args], cwd=ROOT, capture_output=True, text=True,
                                    timeout=timeout, env=job_env())
        self.new_log_path().write_text(result.stdout + result.stderr)  # kept, like start_job's: the canary reads them
        return result

    def start_job(self, config_path: Path | None = None, env: dict | None = None) -> subprocess.Popen:
        """The continuous job in its own process group (``kill_group`` ends it as a crash would)."""
        log_path = self.new_log_path()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [str(SPARK_SUBMIT), "jobs/stream_fraud.py", "--config", str(config_path or self.config_path)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**job_env(), **(env or {})},
                start_new_session=True)
        proc.log_path = log_path
        return proc

    def new_log_path(self) -> Path:
        return self.root / f"job-{uuid.uuid4().hex[:6]}.log"

    def sink_batches(self) -> set[int]:
        with self.connect() as conn:
            return {r[0] for r in conn.execute("SELECT batch_id FROM sink_progress")}

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)


# Two executor JVMs beside the driver, as on EMR (local-cluster: a standalone master and workers in
# the driver's JVM, each executor a process of its own, and no task on the driver).
CLUSTER = "local-cluster[2,1,1536]"


@contextlib.contextmanager
def cluster_work_removed():
    """local-cluster's workers keep executor logs and fetched jars under SPARK_HOME/work (pyspark's
    folder in the venv; its worker takes no other): removed afterwards if this run made it."""
    import pyspark

    work = Path(pyspark.__file__).parent / "work"
    made_work = not work.exists()
    try:
        yield
    finally:
        if made_work:
            shutil.rmtree(work, ignore_errors=True)


def job_env() -> dict:
    """The environment of a job the tests start: a smaller heap, and the JIT's first tier only (a test's
    job lives for a batch or a few, and on 2 cores C2 compiler threads compete with its first batch:
    ~12 s less from launch to the first committed batch; production keeps both tiers)."""
    env = dict(os.environ)
    env.setdefault("FRAUD_DRIVER_MEMORY", "2g")
    env.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")
    return env


@contextlib.contextmanager
def real_batch_writer(spark, config: Config, stack: dict, root: Path):
    """(a real ``AlertPath``, its database's admin DSN, its config): the ``foreachBatch`` function
    on a database, lake and checkpoint of its own under ``root``, with the models ``config``'s
    registry holds (none: no gold). Its lake writer is flushed and closed at the end."""
    from dataclasses import replace

    from fraud.alerts import AlertSink
    from fraud.db import NO_RETRY, make_pool
    from fraud.metrics import BatchMetrics
    from fraud.quality.results import QualityResults
    from fraud.registry import Registry
    from fraud.score import ModelHolder
    from fraud.shadow import ShadowSink
    from fraud.lake_writer import LakeWriter
    from fraud.micro_batch import AlertPath

    dsn = create_database(stack["postgres"]["dsn"], f"fraud_w_{uuid.uuid4().hex[:8]}")
    config = replace(config, lake_root=str(root / "lake"))
    checkpoint = root / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "metadata").write_text(json.dumps({"id": str(uuid.uuid4())}))
    pool = make_pool(config, as_role(dsn, "stream"))
    models, metrics = ModelHolder(Registry.for_config(config), config.alerts.threshold), BatchMetrics(pool)
    try:
        with LakeWriter(spark, config, str(checkpoint), models, metrics) as lake:
            yield (AlertPath(config, models, AlertSink(config, pool), metrics, QualityResults(config, pool), lake,
                               ShadowSink(pool, NO_RETRY)), dsn, config)
    finally:
        pool.close()


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def make_pipeline(stack: dict, root: Path, **overrides) -> Pipeline:
    """Topics, database and a config file of a fresh pipeline."""
    tag = uuid.uuid4().hex[:8]
    bootstrap = stack["kafka"]["bootstrap"]
    topics = {d: f"{d}-{tag}" for d in ("gaming", "fintech", "ecommerce")}
    dsn = create_database(stack["postgres"]["dsn"], f"fraud_{tag}")
    config_path = write_config(root / "conf.yaml", topics=topics, dsn=dsn, bootstrap=bootstrap,
                               lake=root / "lake", checkpoints=root / "checkpoints", **overrides)
    config = load_config(config_path, environ={})
    create_topics({"bootstrap.servers": bootstrap}, list(topics.values()), 3, 1, topic_config(config))
    return Pipeline(root, config_path, config, dsn, bootstrap)


def write_config(path: Path, *, topics: dict, dsn: str, bootstrap: str, lake: Path, checkpoints: Path,
                 **overrides) -> Path:
    """conf/local.yaml with this pipeline's endpoints; ``overrides`` are dotted keys (``model.num_trees``)."""
    raw = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    raw["kafka"]["topics"] = topics
    raw["kafka"]["bootstrap_servers"] = bootstrap
    raw["postgres"]["dsn"] = without_user(dsn)  # each component connects as its own role
    raw["lake_root"] = str(lake)
    raw["checkpoint_root"] = str(checkpoints)
    raw["spark"]["driver_memory"] = "2g"
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def as_role(dsn: str, component: str) -> str:
    """``dsn`` for ``component``'s login role (fraud.roles): what the code under test connects as."""
    from fraud.roles import login

    return psycopg.conninfo.make_conninfo(dsn, user=login(component))


def without_user(dsn: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params.pop("user", None)
    return psycopg.conninfo.make_conninfo(**params)


def create_database(admin_dsn: str, name: str) -> str:
    """A new database, migrated (its roles and grants set); the admin's DSN to it, for the tests' own
    reads and seeds (the code under test connects as its component's role)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo(**params)
    migrate(dsn)
    return dsn


def end_offsets(bootstrap: str, topics: list[str]) -> int:
    """Records in the topics (sum of high watermarks; nothing is ever deleted in tests)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "offsets-probe"})
    try:
        total = 0
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                total += high
        return total
    finally:
        consumer.close()


def simulate_live(pipe: Pipeline, test_id: str, seconds: float = 20.0, rate: float = 300.0, seed: int = 31,
                  profile: str | None = None, finish_sequences: bool = False):
    """Paced simulator traffic into the pipeline's topics, ground truth into its database.
    ``finish_sequences`` for a run whose recall is measured: in a 20-second run most fraud sequences
    (spread over up to a minute and a half) would be cut after their first event, and recall would
    measure the end of the run rather than detection."""
    from fraud_simulator.__main__ import build_options
    from fraud_simulator.run import run_simulation

    options = build_options(pipe.config, domain="all", load_level=None, rate=rate, events=None, duration=seconds,
                            fraud_rate=None, seed=seed, test_id=test_id, pattern_weights=None, output=None,
                            profile=profile, finish_sequences=finish_sequences)
    return run_simulation(pipe.config, options)


def commit_batches(path: str) -> dict[str, set[int]]:
    """query id -> the batch ids marking the stream's commits to the Delta table at ``path`` (a commit's
    newest batch: it holds every batch of the query up to it)."""
    from fraud.lake import stream_commits

    batches: dict[str, set[int]] = {}
    for marker in stream_commits(path):
        batches.setdefault(marker["query_id"], set()).add(marker["batch_id"])
    return batches


def alert_snapshot(dsn: str, test_id_like: str = "%") -> list:
    """Every alert with its transactions, comparable across databases."""
    with psycopg.connect(dsn) as conn:
        return sorted(conn.execute(
            "SELECT alert_id, alert_type, txn_count, array_agg(transaction_id ORDER BY transaction_id)"
            " FROM alerts JOIN alert_transactions USING (alert_id) WHERE test_id LIKE %s"
            " GROUP BY alert_id, alert_type, txn_count", (test_id_like,)).fetchall())


def check_invariants(spark, pipe: Pipeline, reference_dsn: str | None = None, test_id_like: str = "%") -> dict:
    """The exactly-once invariants after faults; the figures checked.

    bronze rows = records in Kafka, one per position; each in exactly one of silver or quarantine;
    no duplicate key in silver or gold; every sink_progress batch committed to bronze and back;
    and, given a reference run's database, the same alerts as that uninterrupted run.
    """
    produced = end_offsets(pipe.bootstrap, pipe.config.kafka.topic_list())

    def table(name):
        return spark.read.format("delta").load(pipe.config.table_path(name))

    bronze, silver, gold = table("bronze"), table("silver"), table("gold")
    quarantine = (table("quarantine") if os.path.exists(pipe.config.table_path("quarantine"))
                  else bronze.limit(0).select("topic", "partition", "offset"))
    key = ["topic", "partition", "offset"]
    assert bronze.count() == produced, "bronze rows = records produced"
    assert bronze.select(*key).distinct().count() == produced, "one bronze row per Kafka position"
    landed = silver.select(*key).unionByName(quarantine.select(*key))
    assert landed.count() == produced and landed.distinct().count() == produced, \
        "each record in exactly one of silver or quarantine"
    silver_rows = silver.count()
    assert silver_rows == silver.select("transaction_id").distinct().count(), "no duplicate key in silver"
    gold_rows = gold.count()
    assert gold_rows == gold.select("transaction_id").distinct().count(), "no duplicate key in gold"
    assert gold.join(silver, "transaction_id", how="left_anti").count() == 0
    with pipe.connect() as conn:
        (alerts,), = conn.execute("SELECT count(*) FROM alerts").fetchall()
        (dupes,), = conn.execute("SELECT count(*) FROM (SELECT transaction_id FROM alert_transactions"
                                 " GROUP BY alert_id, transaction_id HAVING count(*) > 1) d").fetchall()
        progress = {(q, b) for q, b in conn.execute("SELECT query_id, batch_id FROM sink_progress")}
    assert dupes == 0, "no transaction twice in one alert"
    # The lake writer commits a query's batches in groups, each marked with its newest batch: every
    # marker is a batch PostgreSQL holds, and a query's newest batch there is its newest in the lake.
    in_pg: dict[str, set[int]] = {}
    for query_id, batch_id in progress:
        in_pg.setdefault(query_id, set()).add(batch_id)
    in_lake = commit_batches(pipe.config.table_path("bronze"))
    assert {q: max(b) for q, b in in_pg.items()} == {q: max(b) for q, b in in_lake.items()}, \
        "sink_progress agrees with the Delta commits"
    assert all(markers <= in_pg[q] for q, markers in in_lake.items()), "every lake commit's batch reached PostgreSQL"
    figures = {"records": produced, "silver": silver_rows, "gold": gold_rows, "alerts": alerts,
               "batches": len(progress)}
    if reference_dsn is not None:
        mine = alert_snapshot(pipe.dsn, test_id_like)
        assert mine == alert_snapshot(reference_dsn, test_id_like), "alerts equal to the uninterrupted run's"
        figures["alerts_compared"] = len(mine)
    return figures
