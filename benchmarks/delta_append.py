"""What one idempotent Delta append costs: the stream's way (``fraud.lake.IdempotentAppender``: a plain
append marked with the query and batch ids, the table's history read once per query run) against
Delta's own ``txnAppId`` / ``txnVersion`` options (whose check reads the table's transactions on
every commit), without and with Delta's per-commit checksum file. All three append the same rows to
tables of their own, each first in turn, batch after batch, so each side sees the same machine;
medians printed, and written as JSON when ``--output`` is given.

    .venv/bin/python -m benchmarks.delta_append --rows 1000 --batches 30

No stack needed: Spark ``local[*]`` from ``conf/local.yaml`` and a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CHECKSUM = "spark.databricks.delta.writeChecksumFile.enabled"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delta_append", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--rows", type=int, default=1000, help="rows per append (a normal-load batch: 300-2,000)")
    parser.add_argument("--batches", type=int, default=30, help="appends per side")
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from importlib.metadata import version

    import pyspark
    from pyspark.sql import functions as F

    from fraud.config import load_config
    from fraud.lake import IdempotentAppender
    from fraud.spark import build_session

    work = Path(tempfile.mkdtemp(prefix="delta-append-bench-"))
    config = load_config(args.config)
    config = replace(config, lake_root=str(work / "lake"))
    spark = build_session(config, app_name="delta-append-bench")
    rows = (spark.range(args.rows)
            .select(F.col("id").cast("string").alias("transaction_id"),
                    F.element_at(F.array(F.lit("gaming"), F.lit("fintech"), F.lit("ecommerce")),
                                 (F.col("id") % 3 + 1).cast("int")).alias("domain"),
                    F.current_date().alias("event_date"), (F.rand(7) * 500).alias("amount_usd"),
                    F.sha2(F.col("id").cast("string"), 256).alias("payload"))
            .localCheckpoint(eager=True))
    appender = IdempotentAppender(spark, config)
    query_id = str(uuid.uuid4())
    txn_path, crc_path = str(work / "lake" / "txn"), str(work / "lake" / "txn_crc")  # this bench's own tables
    tasks = max(1, -(-args.rows // config.stream.rows_per_file))

    def ours(batch_id: int) -> None:
        appender.append(rows, "silver", query_id, batch_id, ["domain", "event_date"], args.rows)

    def txn(path: str, batch_id: int) -> None:
        (rows.coalesce(tasks).write.format("delta").mode("append").option("txnAppId", query_id)
         .option("txnVersion", batch_id).partitionBy("domain", "event_date").save(path))

    def txn_crc(batch_id: int) -> None:
        """Delta keeps the table's transactions in the per-commit checksum file (.crc), which the job
        turns off (fraud.spark): with it on, the txn check may read them from there."""
        spark.conf.set(_CHECKSUM, "true")
        try:
            txn(crc_path, batch_id)
        finally:
            spark.conf.set(_CHECKSUM, "false")

    sides = {"ours": ours, "txn": lambda batch_id: txn(txn_path, batch_id), "txn_crc": txn_crc}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for batch_id in range(args.batches):
        order = list(sides.items())
        for name, append in order[batch_id % 3:] + order[:batch_id % 3]:  # each side first in turn
            t0 = time.perf_counter()
            append(batch_id)
            times[name].append(time.perf_counter() - t0)
    # The first append of each side creates its table (and ours reads the history): reported apart.
    result = {
        "pyspark": pyspark.__version__, "delta_spark": version("delta-spark"),
        "rows": args.rows, "batches": args.batches,
        "first_s": {name: round(t[0], 3) for name, t in times.items()},
        "median_s": {name: round(statistics.median(t[1:]), 3) for name, t in times.items()},
        "min_max_s": {name: [round(min(t[1:]), 3), round(max(t[1:]), 3)] for name, t in times.items()},
    }
    for name, label in (("ours", "marked append (fraud.lake)"), ("txn", "txnAppId / txnVersion"),
                        ("txn_crc", "txnAppId / txnVersion, .crc")):
        print(f"{label:28} median {result['median_s'][name]:.3f} s  (min {result['min_max_s'][name][0]:.3f},"
              f" max {result['min_max_s'][name][1]:.3f}; first {result['first_s'][name]:.3f} s)")
    print(f"pyspark {result['pyspark']}, {args.rows} rows per append, {args.batches} appends each")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    spark.stop()


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
