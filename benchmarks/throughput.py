"""B2: sustained throughput. Pre-generated events replayed at rising paced rates
(``benchmarks.replay``) -> Kafka -> the running job.

Kafka lag is measured exactly, outside the job: the topics' end offsets (the broker) minus the
end offsets of the job's last committed micro-batch (its checkpoint's ``offsets/<commit>``).
It is a sawtooth (it grows while a batch runs, drops when it commits), so "bounded" is judged on
its lower envelope: the minimum lag in each window of ``WINDOW_S`` seconds. A rate is sustained
when that envelope does not trend up over the run: the last window's minimum is at most
``max(1.5 x the first window's, 3 s of traffic)``. Each window's minimum is kept in the results,
so the judgement can be checked.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from fraud.config import Config
from fraud.checkpoint import CheckpointFiles
from fraud.kafka import client_settings
from fraud.project import ROOT

WINDOW_S = 20
SAMPLE_S = 0.5


class KafkaLag:
    """Records in the job's topics that no committed micro-batch has covered yet."""

    def __init__(self, config: Config, checkpoint: Path):
        from confluent_kafka import Consumer, TopicPartition

        self.checkpoint = checkpoint
        self.consumer = Consumer({**client_settings(config), "group.id": "fraud-bench-lag",
                                  "enable.auto.commit": False})
        self.partitions = [TopicPartition(t, p) for t in config.kafka.topics.values()
                           for p in range(config.kafka.partitions)]

    def end_offsets(self) -> int:
        return sum(self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self.partitions)

    def committed_offsets(self) -> int:
        """Sum of the end offsets of the last batch in ``commits/`` (0 before the first)."""
        files = CheckpointFiles(str(self.checkpoint))
        last = files.last_batch("commits")
        if last is None:
            return 0
        return sum(offset for partitions in files.end_offsets(last).values() for offset in partitions.values())

    def __call__(self) -> int:
        return self.end_offsets() - self.committed_offsets()

    def close(self) -> None:
        self.consumer.close()


def batch_profile(dsn: str, since: datetime, until: datetime) -> dict:
    """Medians over the micro-batches that finished in [since, until]: records per batch, wall time
    per batch (start to metrics row) and each step's milliseconds (``batch_metrics.step_ms``)."""
    from fraud.db import connect

    with connect(dsn) as conn:
        rows = conn.execute("SELECT input_rows, extract(epoch FROM finished_at - started_at) * 1000, step_ms"
                            " FROM batch_metrics WHERE finished_at BETWEEN %s AND %s AND input_rows > 0",
                            (since, until)).fetchall()
    if not rows:
        return {"batches": 0}
    steps = sorted({k for _, _, step_ms in rows for k in step_ms})
    return {"batches": len(rows), "records_per_batch": statistics.median(r[0] for r in rows),
            "batch_ms": round(statistics.median(float(r[1]) for r in rows)),
            "step_ms": {k: round(statistics.median(r[2].get(k, 0.0) for r in rows)) for k in steps}}


def component(process: psutil.Process) -> str:
    """Which part of the system a process is: the broker, the database, or the job's JVM or Python."""
    name, cmdline = process.name(), " ".join(process.cmdline())
    if "kafka.Kafka" in cmdline:
        return "broker"
    if name.startswith("postgres"):
        return "database"
    return "job JVM" if name == "java" else "job Python"


def cpu_seconds_by_component(pids: list[int]) -> dict[str, float]:
    """User + system CPU of these processes and all their children, by ``component``. A child that
    ended since the last reading takes its CPU with it: compare readings of long-lived processes."""
    totals: dict[str, float] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                t = p.cpu_times()
                key = component(p)
            except psutil.NoSuchProcess:
                continue
            totals[key] = totals.get(key, 0.0) + t.user + t.system
    return totals


def cpu_us_per_event(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    """Microseconds of CPU per event, in all and by component, between two readings."""
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    per_event = {k: round(v * 1e6 / events, 1) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    return {"all": round(sum(spent.values()) * 1e6 / events, 1), **per_event}


def replay_process(events_file: Path, config_path: Path, rate: float, seconds: float, tag: str) -> subprocess.Popen:
    """The replay producer in a process of its own: its CPU is not the job's, and is reported apart."""
    return subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), "-m", "benchmarks.replay", "--config",
                             str(config_path), "--events-file", str(events_file), "--rate", str(rate), "--duration",
                             str(seconds), "--tag", tag], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def replay_result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"replay producer failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return json.loads(out.strip().splitlines()[-1])


def paced_run(config_path: Path, events_file: Path, dsn: str, lag: KafkaLag, rate: int, seconds: int,
              cpu_pids: list[int], tag: str) -> dict:
    """The replay at ``rate`` events/s for ``seconds``, the lag sampled throughout; then wait until
    the job has committed everything (the drain time is reported, not part of the judgement)."""
    cpu0 = cpu_seconds_by_component(cpu_pids)
    end0 = lag.end_offsets()
    started_at = datetime.now(timezone.utc)
    producer = replay_process(events_file, config_path, rate, seconds, tag)
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    while producer.poll() is None:
        samples.append((time.monotonic() - t0, lag()))
        time.sleep(SAMPLE_S)  # the sampling period, not synchronisation
    sent = replay_result(producer)
    produced = lag.end_offsets() - end0
    cpu = cpu_us_per_event(cpu0, cpu_seconds_by_component(cpu_pids), produced) if produced else None
    profile = batch_profile(dsn, started_at, datetime.now(timezone.utc))
    drain_start = time.monotonic()
    while lag() > 0:
        if time.monotonic() - drain_start > 900:
            raise RuntimeError(f"the job did not catch up within 900 s after {rate}/s")
        time.sleep(SAMPLE_S)
    envelope = lower_envelope(samples, skip_s=min(10, seconds / 4))
    return {
        "rate_per_s": rate, "seconds": seconds, "produced": produced,
        "achieved_rate_per_s": sent["achieved_rate_per_s"], "producer_kept_rate": sent["kept_rate"],
        "lag_window_min": envelope, "lag_max": max(lag_ for _, lag_ in samples),
        "bounded": bounded(envelope, rate) and sent["kept_rate"],
        "drain_after_s": round(time.monotonic() - drain_start, 1),
        # job + broker + database over the paced period, then by component
        "cpu_us_per_event": cpu["all"] if cpu else None, "cpu_us_per_event_by_component": cpu,
        "producer_cpu_us_per_event": sent["producer_cpu_us_per_event"],
        "batches": profile,
    }


def drain_capacity(config_path: Path, events_file: Path, lag: KafkaLag, events: int, cpu_pids: list[int]) -> dict:
    """A burst of ``events`` as fast as the producer sends them; events / time until the job has
    committed them all. Big batches: an upper bound that places the paced steps."""
    cpu0 = cpu_seconds_by_component(cpu_pids)
    t0 = time.monotonic()
    rate = 1_000_000
    replay_result(replay_process(events_file, config_path, rate, events / rate, f"burst{int(time.time())}"))
    while lag() > 0:
        if time.monotonic() - t0 > 900:
            raise RuntimeError("the job did not drain the burst within 900 s")
        time.sleep(SAMPLE_S)
    seconds = time.monotonic() - t0
    cpu = cpu_us_per_event(cpu0, cpu_seconds_by_component(cpu_pids), events)
    return {"events": events, "seconds": round(seconds, 1), "events_per_s": round(events / seconds),
            "cpu_us_per_event": cpu["all"], "cpu_us_per_event_by_component": cpu}


def lower_envelope(samples: list[tuple[float, int]], skip_s: float) -> list[int]:
    """Minimum lag per ``WINDOW_S`` window after the first ``skip_s`` seconds (the job's first
    batches at a new rate)."""
    windows: dict[int, int] = {}
    for t, value in samples:
        if t >= skip_s:
            key = int((t - skip_s) // WINDOW_S)
            windows[key] = min(value, windows.get(key, value))
    return [windows[k] for k in sorted(windows)]


def bounded(envelope: list[int], rate: int) -> bool:
    if len(envelope) < 2:
        return False
    return envelope[-1] <= max(1.5 * envelope[0], 3 * rate)


def rising_rates(config_path: Path, events_file: Path, dsn: str, lag: KafkaLag, cpu_pids: list[int], *,
                 capacity: float, fractions, step_s: int, hold_s: int, tag: str) -> dict:
    """Steps at ``fractions`` of a measured capacity until one is not bounded; then the highest
    bounded rate held for ``hold_s`` (one retry 15% lower if the hold is not bounded)."""
    steps = []
    for f in fractions:
        rate = max(100, int(round(capacity * f, -2)))
        step = paced_run(config_path, events_file, dsn, lag, rate, step_s, cpu_pids, f"b2{tag}s{rate}")
        print(json.dumps({"b2_step": step}), flush=True)
        steps.append(step)
        if not step["bounded"]:
            break
    candidates = [s["rate_per_s"] for s in steps if s["bounded"]] or [int(round(steps[0]["rate_per_s"] * 0.7, -2))]
    holds = []
    for rate in (max(candidates), int(round(max(candidates) * 0.85, -2))):
        hold = paced_run(config_path, events_file, dsn, lag, rate, hold_s, cpu_pids, f"b2{tag}h{rate}")
        print(json.dumps({"b2_hold": hold}), flush=True)
        holds.append(hold)
        if hold["bounded"]:
            break
    sustained = next((h for h in holds if h["bounded"]), None)
    return {
        "sustained_events_per_s": sustained["achieved_rate_per_s"] if sustained else None,
        "hold_seconds": hold_s,
        "cpu_us_per_event": (sustained or holds[-1])["cpu_us_per_event"],
        "cpu_us_per_event_by_component": (sustained or holds[-1])["cpu_us_per_event_by_component"],
        "producer_cpu_us_per_event": (sustained or holds[-1])["producer_cpu_us_per_event"],
        "capacity_from_drain_events_per_s": round(capacity),
        "steps": steps, "holds": holds,
        "median_step_cpu_us_per_event": statistics.median(s["cpu_us_per_event"] for s in steps if s["cpu_us_per_event"]),
    }
