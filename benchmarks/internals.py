"""The private PySpark / Py4J calls on the job's hot path, each measured against the public API it
stands in for, on the Spark this checkout pins:

1. **Scoring** (a private call no longer used: kept here as the measurement that retired it): the
   fitted pipeline called as one JVM object (``PipelineModel._to_java()`` once per model) against
   PySpark's ``PipelineModel.transform`` (``fraud.score.LoadedModel.transform``), which copies every
   stage's parameters to the JVM on each call. Per call on a silver batch, the alert rows collected.
2. **Releasing a micro-batch**: ``fraud.sinks.materialize`` unpersists the rows a batch's
   ``localCheckpoint`` holds (through the checkpointed RDD, ``_jdf``); the public API has no release,
   and the blocks stay in the block manager until the driver's garbage collector lets Spark's
   ContextCleaner drop them. Blocks and bytes held after ``--batches`` batches each way.

The third, the velocity operator (``fraud.features``: a Java ``StatefulProcessor`` bound through
``_jvm`` / ``_jdf``) has no public counterpart to measure: PySpark's ``transformWithState`` takes a
Python processor only.

    .venv/bin/python -m benchmarks.internals --events 1000 --runs 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.internals", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--events", type=int, default=1000, help="simulator events in the batch")
    parser.add_argument("--runs", type=int, default=7, help="scoring calls per side")
    parser.add_argument("--batches", type=int, default=20, help="micro-batches materialized per side")
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from importlib.metadata import version

    from pyspark.sql import DataFrame

    from fraud.cli import UserError
    from fraud.config import load_config
    from fraud.parse import kafka_records
    from fraud.pipeline import silver_from_records
    from fraud.registry import Registry
    from fraud.score import LoadedModel, ModelHolder, score_silver
    from fraud.sinks import materialize
    from fraud.spark import build_session

    config = load_config(args.config)
    work = Path(tempfile.mkdtemp(prefix="internals-bench-"))
    events = work / "events.jsonl"
    subprocess.run([sys.executable, "-m", "fraud.simulate", "--events", str(args.events), "--seed", "5",
                    "--output", str(events)], check=True, capture_output=True)
    spark = build_session(config, app_name="internals-bench")  # before a model load would start a bare one
    model = ModelHolder(Registry.for_config(config)).current()
    if model is None:
        raise UserError("no registered model: run `make demo` once (it trains and registers one)")
    silver = silver_from_records(kafka_records(spark, config, events.read_text().splitlines()), config)
    silver = silver.localCheckpoint(eager=True)

    class JvmObjectTransform(LoadedModel):
        def transform(self, df):
            return DataFrame(java_pipeline.transform(df._jdf), df.sparkSession)

    java_pipeline = model.pipeline._to_java()
    direct = JvmObjectTransform(model.version, model.pipeline, model.threshold)

    def score(loaded) -> tuple[float, float]:
        """(seconds in the transform call alone, seconds for the batch's alert rows in all)"""
        t0 = time.perf_counter()
        loaded.transform(silver)
        t1 = time.perf_counter()
        score_silver(silver, loaded, config).filter("is_alert").collect()
        return t1 - t0, time.perf_counter() - t1

    times: dict[str, list[float]] = {"one_jvm_object": [], "pyspark_transform": []}
    calls: dict[str, list[float]] = {name: [] for name in times}
    for i in range(args.runs + 1):  # the first call of each compiles the plan's code: not counted
        for name, loaded in (("one_jvm_object", direct), ("pyspark_transform", model))[::1 if i % 2 else -1]:  # alternate
            call, elapsed = score(loaded)
            if i:
                calls[name].append(call)
                times[name].append(elapsed)

    batch = silver.select("*")

    def held() -> tuple[int, int]:
        """(RDDs, bytes) the block manager holds, summed over every stored RDD."""
        infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()
        return len(infos), sum(i.memSize() + i.diskSize() for i in infos)

    baseline = held()
    for _ in range(args.batches):
        _, release = materialize(batch)
        release()
    released = held()
    for _ in range(args.batches):
        batch.localCheckpoint(eager=True)
    kept = held()

    result = {
        "pyspark": version("pyspark"), "events": args.events, "silver_rows": silver.count(),
        "score_s": {name: round(statistics.median(t), 3) for name, t in times.items()},
        "score_min_max_s": {name: [round(min(t), 3), round(max(t), 3)] for name, t in times.items()},
        "transform_call_ms": {name: round(statistics.median(t) * 1000, 1) for name, t in calls.items()},
        "held_after_batches": {"batches": args.batches, "before": baseline, "released": released,
                               "not_released": kept},
    }
    print(f"pyspark {result['pyspark']}; scoring {result['silver_rows']} silver rows, median of {args.runs}:")
    for name in times:
        low, high = result["score_min_max_s"][name]
        print(f"  {name:18} {result['score_s'][name]:.3f} s (min {low:.3f}, max {high:.3f});"
              f" the transform call alone {result['transform_call_ms'][name]:.1f} ms")
    print(f"block manager after {args.batches} batches: RDDs, bytes before {baseline}, released each batch"
          f" {released}, not released {kept}")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    spark.stop()


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
