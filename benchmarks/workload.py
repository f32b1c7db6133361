"""Benchmark workload: simulated events through the stream's own batch code into silver rows."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from fraud.config import Config
from fraud.parse import kafka_records
from fraud.pipeline import silver_from_records
from fraud.project import ROOT
from fraud_simulator.__main__ import build_options
from fraud_simulator.run import run_simulation


def silver_sample(spark: SparkSession, config: Config, events: int, seed: int = 21) -> DataFrame:
    path = ROOT / "var" / "bench" / f"silver-sample-{events}-{seed}.jsonl"
    if not path.exists():
        options = build_options(config, domain="all", load_level=None, rate=None, events=events, duration=None,
                                fraud_rate=None, seed=seed, test_id=None, pattern_weights=None, output=str(path))
        run_simulation(config, options)
    return silver_from_records(kafka_records(spark, config, path.read_text().splitlines()), config).cache()
