"""Benchmark workload: simulated events through the stream's own batch code into silver rows."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession

from fraud.config import Config
from fraud.project import ROOT
from fraud.simulate.run import run_simulation
from fraud.simulate.__main__ import build_options
from fraud.sinks import silver_from_records

RECORDS_SCHEMA = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"


def silver_sample(spark: SparkSession, config: Config, events: int, seed: int = 21) -> DataFrame:
    path = ROOT / "var" / "bench" / f"silver-sample-{events}-{seed}.jsonl"
    if not path.exists():
        options = build_options(config, domain="all", load_level=None, rate=None, events=events, duration=None,
                                fraud_rate=None, seed=seed, test_id=None, pattern_weights=None, output=str(path))
        run_simulation(config, options)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    topics = config.kafka.topics
    records = []
    for offset, line in enumerate(path.read_text().splitlines()):
        event = json.loads(line)
        records.append((event["actor_id"].encode(), line.encode(), topics[event["domain"]], 0, offset, now))
    return silver_from_records(spark.createDataFrame(records, RECORDS_SCHEMA), config).cache()
