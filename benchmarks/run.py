"""The benchmarks: B1 scoring modes, B2 drain throughput, B3 detection latency, and cost.

``python -m benchmarks.run [--quick]`` (``make bench`` / ``make bench-quick``) on the local
stack (``make up``) with a registered model (``make demo`` once). Writes
``benchmarks/results/latest.json`` and prints a table. Everything is measured in this run,
side by side, on this machine.

The streaming job runs exactly as in production (``spark-submit jobs/stream_fraud.py``) on
its own topics' data but its own lake and checkpoint (``var/bench``), starting from the
latest offsets, with the registered model.
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
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import yaml

from fraud.cli import UserError, run
from fraud.config import load_config
from fraud.db import connect, postgres_dsn
from fraud.evaluate import evaluate_run
from fraud.project import ROOT
from fraud.stack.process import wait_until

BENCH = ROOT / "var" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
SPARK_SUBMIT = ROOT / ".venv" / "bin" / "spark-submit"
PY = sys.executable


def bench_config(source: Path) -> Path:
    """The local config with the bench's own lake and checkpoint, the registered model, latest offsets."""
    raw = yaml.safe_load(source.read_text())
    base = source.resolve().parent
    raw["models_root"] = str(load_config(source).models_root or (Path(load_config(source).lake_root) / "models"))
    raw["lake_root"] = str(BENCH / "lake")
    raw["checkpoint_root"] = str(BENCH / "checkpoints")
    raw["kafka"]["starting_offsets"] = "latest"
    for key in ("lake_root", "checkpoint_root"):
        raw[key] = str((base / raw[key]).resolve())
    path = BENCH / "bench.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class Job:
    """The streaming job as a process group, with CPU accounting over all its processes."""

    def __init__(self, config_path: Path, log: Path):
        self.log_path = log
        self.proc = subprocess.Popen([str(SPARK_SUBMIT), "jobs/stream_fraud.py", "--config", str(config_path)],
                                     cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(lambda: self._failed() or "query" in log.read_text() and " started " in log.read_text(), 300,
                   interval_s=1)
        if self._failed():
            raise UserError(f"streaming job exited: see {log}")

    def _failed(self) -> bool:
        return self.proc.poll() is not None

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=120)


def stack_cpu_seconds() -> float:
    """CPU of the broker and the database server processes (the stack's share of the work)."""
    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "kafka.Kafka" in cmd or "pginstall/bin/postgres" in cmd:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


def simulate(config_path: Path, test_id: str, *args: str) -> dict:
    result = subprocess.run([PY, "-m", "fraud.simulate", "--config", str(config_path), "--test-id", test_id,
                             "--domain", "all", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode not in (0, 3):  # 3: the simulator could not keep the rate (reported, not fatal)
        raise UserError(f"simulator failed: {result.stderr.strip().splitlines()[-1:]}")
    return {"stdout": result.stdout.strip().splitlines()[-1:], "exit": result.returncode}


def consumed(dsn: str, since: datetime, events: int) -> bool:
    """The job has processed ``events`` records in batches finished after ``since`` (nothing else is
    produced to its topics meanwhile), so every one of them is in the tables and PostgreSQL."""
    with connect(dsn) as conn:
        (done,), = conn.execute("SELECT coalesce(sum(input_rows), 0) FROM batch_metrics WHERE finished_at > %s",
                                (since,)).fetchall()
    return done >= events


def events_sent(dsn: str, test_id: str) -> int:
    with connect(dsn) as conn:
        (sent,), = conn.execute("SELECT events_sent FROM simulation_runs WHERE test_id = %s", (test_id,)).fetchall()
    return sent


def latency_runs(job: Job, config_path: Path, dsn: str, level: str, seconds: int, repeats: int) -> dict:
    runs = []
    for i in range(repeats):
        test_id = f"bench-{level}-{datetime.now(timezone.utc):%H%M%S}-{i}"
        cpu0, stack0, t0 = job.cpu_seconds(), stack_cpu_seconds(), datetime.now(timezone.utc)
        sim = simulate(config_path, test_id, "--load-level", level, "--duration", str(seconds))
        sent = events_sent(dsn, test_id)
        wait_until(lambda: consumed(dsn, t0, sent), 1800, interval_s=2)
        result = evaluate_run(dsn, test_id)
        runs.append({"test_id": test_id, "latency_ms": result["latency_ms"], "simulator": sim,
                     "job_cpu_s": round(job.cpu_seconds() - cpu0, 1),
                     "stack_cpu_s": round(stack_cpu_seconds() - stack0, 1),
                     "recall": {d: v.get("recall") for d, v in result["domains"].items()}})
    keys = ("p50", "p95", "p99", "max")
    return {f"{k}_ms": statistics.median(r["latency_ms"][k] for r in runs) for k in keys} | {
        "spread_p99_ms": [min(r["latency_ms"]["p99"] for r in runs), max(r["latency_ms"]["p99"] for r in runs)],
        "seconds_per_run": seconds, "runs": runs}


def drain_throughput(job_config: Path, dsn: str, events: int) -> dict:
    """B2: a backlog of ``events`` in Kafka, then the job started on it: events / time to drain."""
    history = BENCH / f"backlog-{events}.jsonl"
    if not history.exists():
        subprocess.run([PY, "-m", "fraud.simulate", "--events", str(events), "--seed", "31", "--output",
                        str(history)], cwd=ROOT, check=True, capture_output=True)
    raw = yaml.safe_load(job_config.read_text())
    raw["kafka"]["starting_offsets"] = "earliest"
    raw["checkpoint_root"] = str(BENCH / "checkpoints-drain")
    shutil.rmtree(BENCH / "checkpoints-drain", ignore_errors=True)
    drain_config = BENCH / "drain.yaml"
    # Own topics, so the backlog is exactly this file.
    tag = datetime.now(timezone.utc).strftime("%H%M%S")
    raw["kafka"]["topics"] = {d: f"bench-{d}-{tag}" for d in raw["kafka"]["topics"]}
    drain_config.write_text(yaml.safe_dump(raw, sort_keys=False))
    create_topics(load_config(drain_config))
    subprocess.run([PY, "-m", "fraud.simulate", "--config", str(drain_config), "--replay", str(history)],
                   cwd=ROOT, check=True, capture_output=True)
    t0 = datetime.now(timezone.utc)
    stack0 = stack_cpu_seconds()
    job = Job(drain_config, BENCH / "drain-job.log")
    started = time.perf_counter()
    cpu0 = job.cpu_seconds()
    try:
        wait_until(lambda: consumed(dsn, t0, events), 3600, interval_s=1)
        seconds = time.perf_counter() - started
        cpu = job.cpu_seconds() - cpu0 + stack_cpu_seconds() - stack0
    finally:
        job.stop()
    return {"events": events, "seconds": round(seconds, 1), "sustained_events_per_s": round(events / seconds),
            "cpu_us_per_event": round(cpu * 1e6 / events, 1)}


def create_topics(config) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from fraud.kafka import client_settings

    admin = AdminClient(client_settings(config))
    for future in admin.create_topics([NewTopic(t, config.kafka.partitions, 1)
                                       for t in config.kafka.topics.values()]).values():
        future.result(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="same measurements, shorter (< 10 minutes)")
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    args = parser.parse_args(argv)
    quick = args.quick
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the job's process group on the way out
    BENCH.mkdir(parents=True, exist_ok=True)
    source = Path(args.config)
    config_path = bench_config(source)
    config = load_config(config_path)
    dsn = postgres_dsn(config)
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

    results["throughput"] = drain_throughput(config_path, dsn, 30_000 if quick else 150_000)
    print(json.dumps(results["throughput"]), flush=True)

    shutil.rmtree(BENCH / "checkpoints", ignore_errors=True)
    job = Job(config_path, BENCH / "job.log")
    try:
        results["latency"] = {
            "normal": latency_runs(job, config_path, dsn, "normal", 120 if quick else 300, 1 if quick else 3),
            "peak": latency_runs(job, config_path, dsn, "peak", 60 if quick else 300, 1 if quick else 3),
        }
    finally:
        job.stop()
    results["cost"] = cost(results, config)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: results[k] for k in ("scoring", "throughput", "cost")}, indent=2))
    print(json.dumps({lvl: {k: v for k, v in r.items() if k != "runs"} for lvl, r in results["latency"].items()}))


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
