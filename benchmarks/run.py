"""The benchmarks: B1 scoring modes, B2 sustained throughput, B3 detection latency, and cost.

``python -m benchmarks.run [--quick]`` (``make bench`` / ``make bench-quick``) on the local
stack (``make up``) with a registered model (``make demo`` once). Writes
``benchmarks/results/latest.json``, ``latest.md`` (the table of docs/benchmarks.md) and PNG plots, and prints
the table. Everything is measured in this run, side by side, on this machine.

B1 runs in its own Spark session. Then one streaming job runs exactly as in production
(``spark-submit jobs/stream_fraud.py``) on the local topics from their latest offsets, with
its own lake and checkpoint (``var/bench``) and the registered model: its start-up (launch to
first batch with records committed, under the warm-up's traffic), B3 at normal and peak load (the simulator:
it records the ground truth), a burst to place B2's steps, then B2's rising paced rates and the
hold (pre-generated events replayed by ``benchmarks.replay``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import yaml

from fraud.cli import UserError, run
from fraud.config import load_config
from fraud.db import postgres_dsn
from fraud.detection import evaluate_run, run_processed
from fraud.checkpoint import CheckpointFiles
from fraud.project import ROOT
from fraud_devstack.process import wait_until
from fraud.stream import checkpoint_location

from benchmarks.eventlog import per_batch
from benchmarks.jfr import recording_options, summarize
from benchmarks.replay import events_file
from benchmarks.report import goal_status, plots, table
from benchmarks.throughput import KafkaLag, batch_profile, drain_capacity, rising_rates

BENCH = ROOT / "var" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
SPARK_SUBMIT = ROOT / ".venv" / "bin" / "spark-submit"
PY = sys.executable


def job_config(source: Path, root: Path) -> Path:
    """The local config with a lake and checkpoint of its own under ``root``, the registered model,
    latest offsets (``root/job.yaml``)."""
    raw = yaml.safe_load(source.read_text())
    base = source.resolve().parent
    raw["models_root"] = str(load_config(source).models_root or (Path(load_config(source).lake_root) / "models"))
    raw["lake_root"] = str(root / "lake")
    raw["checkpoint_root"] = str(root / "checkpoints")
    raw["kafka"]["starting_offsets"] = "latest"
    for key in ("lake_root", "checkpoint_root"):
        raw[key] = str((base / raw[key]).resolve())
    root.mkdir(parents=True, exist_ok=True)
    path = root / "job.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class Job:
    """The streaming job (``spark-submit jobs/stream_fraud.py``) as a process group; started when
    its query runs. ``java_options``: the driver JVM's extra options (a JFR recording, a GC log)."""

    def __init__(self, config_path: Path, log: Path, java_options: list[str], spark_conf: dict[str, str] | None = None):
        self.log_path = log
        conf = [arg for key, value in (spark_conf or {}).items() for arg in ("--conf", f"{key}={value}")]
        self.proc = subprocess.Popen([str(SPARK_SUBMIT), "--driver-java-options",
                                      " ".join(["-Duser.timezone=UTC", *java_options]), *conf,
                                      "jobs/stream_fraud.py", "--config", str(config_path)],
                                     cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(lambda: self._failed() or "query" in log.read_text() and " started " in log.read_text(), 300,
                   interval_s=1)
        if self._failed():
            raise UserError(f"streaming job exited: see {log}")

    def _failed(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=120)


def stack_pids() -> list[int]:
    """The broker and the database server (its backends are its children): the stack's share."""
    pids = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "kafka.Kafka" in cmd or (p.info["cmdline"] or [""])[0].endswith("pginstall/bin/postgres"):
            pids.append(p.pid)
    return pids


def records_committed(checkpoint: CheckpointFiles) -> bool:
    """Whether a batch holding records is committed: the job's start-up is over when it detects again
    (a first batch can be empty, when it is planned before the traffic's first records arrive)."""
    last = checkpoint.last_batch("commits")
    if last is None:
        return False

    def total(offsets: dict[str, dict[str, int]]) -> int:
        return sum(offset for partitions in offsets.values() for offset in partitions.values())
    return total(checkpoint.end_offsets(last)) > total(checkpoint.start_offsets())


def simulate(config_path: Path, test_id: str, *args: str) -> dict:
    result = subprocess.run([PY, "-m", "fraud_simulator", "--config", str(config_path), "--test-id", test_id,
                             "--domain", "all", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode not in (0, 3):  # 3: the simulator could not keep the rate (reported, not fatal)
        raise UserError(f"simulator failed: {result.stderr.strip().splitlines()[-1:]}")
    return {"stdout": result.stdout.strip().splitlines()[-1:], "exit": result.returncode}


def caught_up(lag: KafkaLag) -> bool:
    return lag() == 0


def latency_runs(config_path: Path, dsn: str, level: str, seconds: int, repeats: int) -> dict:
    """B3: the simulator at ``level`` for ``seconds``, ``repeats`` times; event produced -> alert committed."""
    runs = []
    for i in range(repeats):
        test_id = f"bench-{level}-{datetime.now(timezone.utc):%H%M%S}-{i}"
        started_at = datetime.now(timezone.utc)
        sim = simulate(config_path, test_id, "--load-level", level, "--duration", str(seconds))
        wait_until(lambda: run_processed(dsn, test_id), 900, interval_s=0.5)
        result = evaluate_run(dsn, test_id)
        runs.append({"test_id": test_id, "latency_ms": result["latency_ms"], "simulator": sim,
                     "batches": batch_profile(dsn, started_at, datetime.now(timezone.utc)),
                     "recall": {d: v.get("recall") for d, v in result["domains"].items()},
                     "precision": {d: v.get("precision") for d, v in result["domains"].items()}})
    keys = ("p50", "p95", "p99", "max")
    return {f"{k}_ms": statistics.median(r["latency_ms"][k] for r in runs) for k in keys} | {
        "spread_p99_ms": [min(r["latency_ms"]["p99"] for r in runs), max(r["latency_ms"]["p99"] for r in runs)],
        "seconds_per_run": seconds, "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="same measurements, shorter (< 10 minutes)")
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    args = parser.parse_args(argv)
    quick = args.quick
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the job's process group on the way out
    BENCH.mkdir(parents=True, exist_ok=True)
    source = Path(args.config)
    config_path = job_config(source, BENCH)
    config = load_config(config_path)
    dsn = postgres_dsn(config, "batch")
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": quick,
                     "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                              text=True).stdout.strip(),
                     "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                                 "platform": platform.platform(), "python": platform.python_version()}}

    from benchmarks.scoring import measure_scoring
    from benchmarks.workload import silver_sample
    from fraud.registry import Registry
    from fraud.score import ModelHolder
    from fraud.spark import build_session

    spark = build_session(config)
    model = ModelHolder(Registry.for_config(config)).current()
    if model is None:
        raise UserError("no registered model: run `make demo` once (it trains and registers one)")
    results["model_version"] = model.version
    results["scoring"] = measure_scoring(spark, config, model, silver_sample(spark, config, 6000),
                                         per_event_n=20 if quick else 60, batch100_n=5 if quick else 15,
                                         micro_batch_rows=2000, repeats=5 if quick else 11)
    spark.stop()
    print(json.dumps(results["scoring"]), flush=True)

    replay_events = events_file(config_path, 100_000)  # B2's load, generated off the clock (cached)

    # One job for B3 and B2, as it runs in production: latest offsets, its own lake and checkpoint.
    shutil.rmtree(BENCH / "checkpoints", ignore_errors=True)
    shutil.rmtree(BENCH / "lake", ignore_errors=True)
    checkpoint = checkpoint_location(config)
    # The warm-up's traffic starts with the job: launch -> the first batch with records committed is
    # what a restart after a crash costs in detection.
    warm_up = threading.Thread(target=simulate, args=(config_path, f"bench-warmup-{results['date'][11:19]}",
                                                      "--load-level", "normal", "--duration", "45" if quick else "90"))
    launched = time.monotonic()
    warm_up.start()
    recording = BENCH / "job.jfr"
    recording.unlink(missing_ok=True)
    event_dir = BENCH / "events"
    shutil.rmtree(event_dir, ignore_errors=True)
    event_dir.mkdir(parents=True)
    job = Job(config_path, BENCH / "job.log", [recording_options(recording)],
              {"spark.eventLog.enabled": "true", "spark.eventLog.compress": "false", "spark.eventLog.dir": str(event_dir)})
    results["startup"] = {"query_started_s": round(time.monotonic() - launched, 1)}
    lag = KafkaLag(config, Path(checkpoint))
    cpu_pids = [job.proc.pid, *stack_pids()]
    try:
        wait_until(lambda: records_committed(CheckpointFiles(checkpoint)), 600, interval_s=0.1)
        results["startup"]["first_batch_s"] = round(time.monotonic() - launched, 1)
        print(json.dumps({"startup": results["startup"]}), flush=True)
        warm_up.join()
        wait_until(lambda: caught_up(lag), 900, interval_s=0.5)
        results["latency"] = {
            "normal": latency_runs(config_path, dsn, "normal", 75 if quick else 300, 1 if quick else 3),
            "peak": latency_runs(config_path, dsn, "peak", 45 if quick else 300, 1 if quick else 3),
        }
        print(json.dumps({lvl: {k: v for k, v in r.items() if k != "runs"} for lvl, r in results["latency"].items()}),
              flush=True)
        burst = drain_capacity(config_path, replay_events, lag, 60_000 if quick else 200_000, cpu_pids)
        print(json.dumps({"b2_burst": burst}), flush=True)
        results["throughput"] = {"burst": burst} | rising_rates(
            config_path, replay_events, dsn, lag, cpu_pids, capacity=burst["events_per_s"],
            fractions=(0.6, 0.8, 0.95) if quick else (0.5, 0.65, 0.8, 0.9, 1.0),
            step_s=30 if quick else 60, hold_s=180 if quick else 300, tag=results["date"][11:19].replace(":", ""))
    finally:
        lag.close()
        job.stop()
    results["cost"] = cost(results, config)
    RESULTS.mkdir(parents=True, exist_ok=True)
    batches = (CheckpointFiles(checkpoint).last_batch("commits") or 0) + 1
    results["per_batch"] = per_batch(BENCH / "events", BENCH / "lake", batches)
    profile = summarize(recording, RESULTS / "profile" / "job-jvm")  # JFR dumps when the JVM exits
    results["jvm_profile"] = {"samples": profile["samples"], "task_thread_share": profile["task_thread_share"],
                              "self_top5": profile["self"][:5]}
    results["goals"] = goal_status(results)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "latest.md").write_text(table(results) + "\n")
    plots(results, RESULTS)
    print(table(results))
    print(json.dumps(results["goals"], indent=2))


def cost(results: dict, config) -> dict:
    """USD per 1M events on EMR Serverless: measured CPU-seconds per event (job + broker + database,
    at full load) priced as vCPU-hours, plus the memory that comes with each vCPU (config ``costs``)."""
    c = config.costs
    vcpu_hours = results["throughput"]["cpu_us_per_event"] / 3600  # 1M events x N us = N CPU-seconds
    per_vcpu_hour = c.vcpu_hour + c.memory_gb_hour * c.memory_gb / c.vcpus
    return {"usd_per_million_events": round(vcpu_hours * per_vcpu_hour, 4), "vcpu_hours_per_million": round(vcpu_hours, 3),
            "usd_per_vcpu_hour_with_memory": round(per_vcpu_hour, 5), "replaced_design_usd_per_million": [0.015, 0.05]}


if __name__ == "__main__":
    run(main)
