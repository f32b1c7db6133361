"""What data quality adds to a micro-batch: the real ``foreachBatch`` (``fraud.micro_batch.AlertPath``)
on a realistic batch, with validation off, with the per-batch row checks, and with the GX
checkpoint on that batch too. Median of several runs each, printed as a table.

    .venv/bin/python -m fraud_devstack up          # PostgreSQL for results, alerts, metrics
    .venv/bin/python benchmarks/quality_overhead.py --events 2000 --runs 5
    .venv/bin/python -m fraud_devstack down

The batch is simulator output (the Kafka-shaped records cached once) put through what the
stream runs before its state operator, with each variant's routing (``fraud.pipeline.batch_records``:
parse, expectation reasons, velocity in batch), then handed to a fresh ``AlertPath`` per run
(own lake folder and query id, so every Delta append really commits); the time covers both.
Without a registered model the batch is not scored: the base time is lower than the live
job's, so the relative overhead printed here is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--events", type=int, default=2000, help="rows in the batch (normal load: 200-2,000)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gx-runs", type=int, default=2, help="runs with the GX checkpoint (slow)")
    args = parser.parse_args()

    from fraud.alerts import AlertSink
    from fraud.config import load_config
    from fraud.db import NO_RETRY, admin_dsn, make_pool, migrate, postgres_dsn
    from fraud.metrics import BatchMetrics
    from fraud.parse import kafka_records
    from fraud.pipeline import batch_records
    from fraud.quality.results import QualityResults
    from fraud.registry import Registry
    from fraud.score import ModelHolder
    from fraud.shadow import ShadowSink
    from fraud.lake_writer import LakeWriter
    from fraud.micro_batch import AlertPath
    from fraud.spark import build_session

    work = Path(tempfile.mkdtemp(prefix="quality-bench-"))
    base = load_config(args.config)
    base = replace(base, lake_root=str(work / "lake"), models_root=str(work / "models"))
    events = work / "events.jsonl"
    subprocess.run([sys.executable, "-m", "fraud_simulator", "--events", str(args.events), "--seed", "5",
                    "--output", str(events)], check=True, capture_output=True)
    spark = build_session(base, app_name="quality-bench")
    spark.sparkContext.setLogLevel("ERROR")
    migrate(admin_dsn(base))
    pool = make_pool(base, postgres_dsn(base, "stream"))
    records = kafka_records(spark, base, events.read_text().splitlines()).persist()  # what Kafka delivers
    rows = records.count()

    def run_once(config, batch_id: int) -> tuple[float, dict]:
        checkpoint = work / f"ck-{uuid.uuid4().hex[:8]}"
        checkpoint.mkdir()
        (checkpoint / "metadata").write_text(json.dumps({"id": str(uuid.uuid4())}))
        quality = QualityResults(config, pool)
        config = replace(config, lake_root=str(work / f"lake-{uuid.uuid4().hex[:8]}"))
        models, metrics = ModelHolder(Registry.for_config(config)), BatchMetrics(pool)
        with LakeWriter(spark, config, str(checkpoint), models, metrics) as lake:
            writer = AlertPath(config, models, AlertSink(config, pool), metrics, quality, lake,
                               ShadowSink(pool, NO_RETRY))
            t0 = time.perf_counter()
            writer(batch_records(records, config), batch_id)
            lake.flush()
            quality.drain()  # the GX checkpoint runs beside the stream; its cost is what is measured here
            elapsed = time.perf_counter() - t0
        with pool.connection() as conn:
            (steps,), = conn.execute("SELECT step_ms FROM batch_metrics WHERE query_id = %s AND batch_id = %s",
                                     (lake.query_id, batch_id)).fetchall()
        return elapsed, steps

    variants = {
        "no validation": (replace(base, quality=replace(base.quality, enabled=False)), args.runs),
        "row checks (every batch)": (replace(base, quality=replace(base.quality, gx_every_n_batches=0)), args.runs),
        "row checks + GX checkpoint": (replace(base, quality=replace(base.quality, gx_every_n_batches=1,
                                                                      data_docs_dir=None)), args.gx_runs),
    }
    variants = {name: v for name, v in variants.items() if v[1] > 0}
    run_once(variants["no validation"][0], 1)  # warm-up: JIT, Delta classes, first table creation
    results = {}
    # Round robin over the variants, so a change of load on the machine hits all of them alike.
    order = [name for r in range(args.runs) for name, (_, runs) in variants.items() if r < runs]
    for i, name in enumerate(order):
        elapsed, steps = run_once(variants[name][0], 1)
        results.setdefault(name, []).append((elapsed, steps.get("quality")))
        print(f"  run {i + 1}/{len(order)} {name}: {elapsed:.2f} s (quality step {steps.get('quality')} ms)",
              flush=True)

    baseline = statistics.median(e for e, _ in results["no validation"])
    print(f"\nforeachBatch on {rows:,} rows (simulator, {args.events} events), median of runs:")
    print(f"{'variant':32} {'runs':>4} {'median s':>9} {'added':>8}")
    for name, samples in results.items():
        median = statistics.median(e for e, _ in samples)
        print(f"{name:32} {len(samples):>4} {median:>9.2f} {100 * (median / baseline - 1):>7.1f}%")
    gx = results.get("row checks + GX checkpoint")
    if gx:
        every = base.quality.gx_every_n_batches
        added = statistics.median(e for e, _ in gx) - statistics.median(e for e, _ in results["row checks (every batch)"])
        print(f"GX checkpoint every {every} batches (conf): +{added / every:.2f} s per batch amortised "
              f"({100 * added / every / baseline:.1f}% of the base batch)")
    pool.close()
    spark.stop()


if __name__ == "__main__":
    main()
