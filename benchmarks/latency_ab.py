"""A lever measured side by side: detection latency and the micro-batch cycle at normal load, under
config variants, alternating (``python -m benchmarks.latency_ab VARIANTS.json a,b,a,b``).

``VARIANTS.json`` maps a name to config sections to override, e.g.
``{"per_batch": {"stream": {"lake_commit_interval_s": 0}}, "grouped": {}}``; the order names the
runs. Each run is a fresh streaming job as in the bench (``spark-submit``, its own lake and
checkpoint under ``var/ab``): 30 s of the simulator at normal load to warm it, then ``--seconds``
of it measured. Prints one JSON line per run: latency percentiles, the median cycle from Spark's
progress reports (trigger, planning, addBatch, offset and commit logs, the state store's commit)
and the median alert-path steps. Needs the local stack (``make up``) and a registered model, and a
quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
from pathlib import Path

import yaml
from fraud.checkpoint import CheckpointFiles
from fraud.cli import UserError, run
from fraud.config import load_config
from fraud.db import postgres_dsn
from fraud.project import ROOT
from fraud.stream import checkpoint_location
from fraud_devstack.process import wait_until

from benchmarks.run import Job, job_config, latency_runs, simulate
from benchmarks.throughput import KafkaLag

AB = ROOT / "var" / "ab"
_PROGRESS = re.compile(r"batch (\d+) progress: durations (\{.*?\}), state rows .*state commit (\d+) ms")
CYCLE = ("triggerExecution", "queryPlanning", "addBatch", "walCommit", "commitOffsets", "stateCommit")


def cycle(log: Path, after_batch: int) -> tuple[int, dict[str, float]]:
    """(batches, median ms per part of the cycle) of the batches after ``after_batch``, from the job's log."""
    batches = []
    for match in _PROGRESS.finditer(log.read_text()):
        if int(match.group(1)) > after_batch:
            durations = json.loads(match.group(2).replace("'", '"'))
            batches.append({**durations, "stateCommit": int(match.group(3))})
    if not batches:
        raise UserError(f"no progress report after batch {after_batch} in {log}")
    return len(batches), {k: statistics.median(b.get(k, 0) for b in batches) for k in CYCLE}


def measure(name: str, overrides: dict, seconds: int, run_no: int) -> dict:
    shutil.rmtree(AB, ignore_errors=True)
    config_path = job_config(ROOT / "conf" / "local.yaml", AB)
    raw = yaml.safe_load(config_path.read_text())
    for section, values in overrides.items():
        raw[section].update(values)
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_config(config_path)
    log = AB / f"job-{run_no}-{name}.log"
    job = Job(config_path, log, [])
    checkpoint = checkpoint_location(config)
    lag = KafkaLag(config, Path(checkpoint))
    try:
        wait_until(lambda: CheckpointFiles(checkpoint).last_batch("commits") is not None, 600, interval_s=0.2)
        simulate(config_path, f"ab-warm-{run_no}-{os.getpid()}", "--load-level", "normal", "--duration", "30")
        wait_until(lambda: lag() == 0, 900, interval_s=0.5)
        warm = CheckpointFiles(checkpoint).last_batch("commits")
        latency = latency_runs(config_path, postgres_dsn(config, "batch"), "normal", seconds, 1)
    finally:
        lag.close()
        job.stop()
    batches, medians = cycle(log, warm)
    keep = Path("/tmp") / f"fraud-ab-{name}-{run_no}.log"  # the next run clears var/ab
    shutil.copy(log, keep)
    return {"variant": name, **{k: latency[f"{k}_ms"] for k in ("p50", "p95", "p99", "max")}, "batches": batches,
            "cycle_ms": medians, "steps_ms": latency["runs"][0]["batches"].get("step_ms"), "log": str(keep)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency_ab", description=__doc__.splitlines()[0])
    parser.add_argument("variants", help="JSON file: variant name -> config sections to override")
    parser.add_argument("order", help="comma-separated variant names, one run each, e.g. a,b,a,b")
    parser.add_argument("--seconds", type=int, default=60, help="measured seconds of normal load per run")
    args = parser.parse_args(argv)
    try:
        variants = json.loads(Path(args.variants).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{args.variants}: {err}") from None
    unknown = [name for name in args.order.split(",") if name not in variants]
    if unknown:
        raise UserError(f"not in {args.variants}: {', '.join(unknown)}")
    for run_no, name in enumerate(args.order.split(",")):
        print(json.dumps(measure(name, variants[name], args.seconds, run_no)), flush=True)


if __name__ == "__main__":
    run(main)
