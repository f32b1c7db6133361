"""Helpers for tests that run the real job against the real stack."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fraud.config import Config, load_config
from fraud.db import migrate

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

    def run_job(self, *, once: bool = True, config_path: Path | None = None, timeout: int = 900) -> None:
        args = [str(SPARK_SUBMIT), "jobs/stream_fraud.py", "--config", str(config_path or self.config_path)]
        result = subprocess.run(args + (["--once"] if once else []), cwd=ROOT, capture_output=True, text=True,
                                timeout=timeout, env=job_env())
        assert result.returncode == 0, result.stderr[-3000:]

    def start_job(self, config_path: Path | None = None) -> subprocess.Popen:
        log = open(self.root / f"job-{uuid.uuid4().hex[:6]}.log", "w")
        return subprocess.Popen(
            [str(SPARK_SUBMIT), "jobs/stream_fraud.py", "--config", str(config_path or self.config_path)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=job_env(), start_new_session=True)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)


def job_env() -> dict:
    env = dict(os.environ)
    env.setdefault("FRAUD_DRIVER_MEMORY", "2g")
    return env


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def make_pipeline(stack: dict, root: Path, **overrides) -> Pipeline:
    """Topics, database and a config file of a fresh pipeline."""
    tag = uuid.uuid4().hex[:8]
    bootstrap = stack["kafka"]["bootstrap"]
    topics = {d: f"{d}-{tag}" for d in ("gaming", "fintech", "ecommerce")}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, 3, 1) for t in topics.values()]).values():
        future.result(timeout=30)
    dsn = create_database(stack["postgres"]["dsn"], f"fraud_{tag}")
    config_path = write_config(root / "conf.yaml", topics=topics, dsn=dsn, bootstrap=bootstrap,
                               lake=root / "lake", checkpoints=root / "checkpoints", **overrides)
    return Pipeline(root, config_path, load_config(config_path, environ={}), dsn, bootstrap)


def write_config(path: Path, *, topics: dict, dsn: str, bootstrap: str, lake: Path, checkpoints: Path,
                 **overrides) -> Path:
    """conf/local.yaml with this pipeline's endpoints; ``overrides`` are dotted keys (``model.num_trees``)."""
    raw = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    raw["kafka"]["topics"] = topics
    raw["kafka"]["bootstrap_servers"] = bootstrap
    raw["postgres"]["dsn"] = dsn
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


def create_database(admin_dsn: str, name: str) -> str:
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
