"""Does clustering silver by what readers filter on pay for itself? Measured on a lake the stream wrote.

``python -m benchmarks.clustering [--silver var/soak/lake/silver]`` copies the table twice: one copy
compacted as ``jobs/maintain_lake.py`` leaves it (bin-packing per partition), one Z-ordered by
``actor_id`` within its partitions (domain, event date). Then, on each, the filters the readers use,
each a median of ``--repeats`` runs: an analyst's drill-down to one actor (notebooks, the alert page's
questions), the training job's read of some runs (``test_id``), one domain and day. Prints JSON with
the rewrite's seconds and the files each query read (Spark's scan metric).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from fraud.cli import run
from fraud.config import load_config
from fraud.project import ROOT

WORK = ROOT / "var" / "clustering"


def files_read(spark, df) -> int:
    """Files the scan read after partition pruning and data skipping (the executed plan's metric)."""
    df.collect()
    plan = df._jdf.queryExecution().executedPlan()
    total = 0
    leaves = plan.collectLeaves()  # a Scala Seq
    for i in range(leaves.size()):
        metrics = leaves.apply(i).metrics()
        if metrics.contains("numFiles"):
            total += int(metrics.apply("numFiles").value())
    return total


def timed(spark, make_df, repeats: int) -> dict:
    times, files = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        df = make_df()
        files = files_read(spark, df)
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 3), "files_read": files}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clustering", description=__doc__.splitlines()[0])
    parser.add_argument("--silver", type=Path, default=ROOT / "var" / "soak" / "lake" / "silver")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    args = parser.parse_args(argv)
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from fraud.spark import build_session

    spark = build_session(load_config(args.config), app_name="clustering-bench")
    spark.sparkContext.setLogLevel("WARN")
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # the scan stays a leaf of the executed plan
    shutil.rmtree(WORK, ignore_errors=True)
    copies = {"compacted": WORK / "compacted", "zorder_actor": WORK / "zorder_actor"}
    rewrite = {}
    for name, path in copies.items():
        shutil.copytree(args.silver, path)
        t0 = time.perf_counter()
        table = DeltaTable.forPath(spark, str(path)).optimize()
        table.executeZOrderBy("actor_id") if name == "zorder_actor" else table.executeCompaction()
        rewrite[name] = round(time.perf_counter() - t0, 1)
    sample = spark.read.format("delta").load(str(copies["compacted"]))
    actors = [r.actor_id for r in sample.select("actor_id").distinct().orderBy(F.rand(7)).limit(5).collect()]
    runs = [r.test_id for r in sample.select("test_id").distinct().orderBy("test_id").limit(2).collect()]
    day = sample.agg(F.max("event_date")).first()[0]
    results = {"rows": sample.count(), "rewrite_s": rewrite, "queries": {}}
    for name, path in copies.items():
        def read():
            return spark.read.format("delta").load(str(path))

        def count(df):  # an aggregate that reads a column: the scan runs, nothing big comes back
            return df.agg(F.count("transaction_id"))
        results["queries"][name] = {
            "one_actor": timed(spark, lambda: count(read().filter(F.col("actor_id") == actors[0])), args.repeats),
            "five_actors": timed(spark, lambda: count(read().filter(F.col("actor_id").isin(actors))), args.repeats),
            "two_runs": timed(spark, lambda: count(read().filter(F.col("test_id").isin(runs))), args.repeats),
            "domain_day": timed(spark, lambda: count(read().filter((F.col("domain") == "fintech")
                                                                    & (F.col("event_date") == day))), args.repeats),
        }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    run(main)
