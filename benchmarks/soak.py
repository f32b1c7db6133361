"""The soak test: the streaming job at a steady load for an hour, with maintenance on its schedule.

``python -m benchmarks.soak [--minutes 60] [--window-minutes 10] [--maintain-every-minutes 15]``
(``make soak``) on the local stack with a registered model (``make demo`` once), nothing else
running. The job runs as in production (``spark-submit jobs/stream_fraud.py``, latest offsets, a
lake and checkpoint of its own under ``var/soak``); the simulator sends normal load in back-to-back
runs of one window each, so each window has its own detection latency against its ground truth;
``jobs/maintain_lake.py`` runs beside it every ``--maintain-every-minutes`` (at the lowest CPU
priority, ``nice -n 19``: here it shares the job's two cores, on EMR it has workers of its own).

Every ``SAMPLE_S`` seconds it records the job's resident memory (the Python driver and its JVM),
the state store's rows and memory (from the last batch's progress), the data files and log bytes
of each lake table on disk and the size of each PostgreSQL table; the JVM's heap after each
garbage collection comes from its GC log. At the end: the job catches up, stops, and bronze is
counted against the records the topics received.

Written to ``benchmarks/results/soak.json``, ``soak.md`` (the table of docs/benchmarks.md: first window against
last) and ``soak.png``.
"""

from __future__ import annotations

import argparse
import json
import re
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

from fraud.cli import UserError, run
from fraud.config import load_config
from fraud.db import connect, postgres_dsn
from fraud.detection import evaluate_run, run_processed
from fraud.maintenance import POSTGRES_TABLES, TABLES, bytes_under, data_files_on_disk
from fraud.project import ROOT
from fraud_devstack.process import wait_until
from fraud.stream import checkpoint_location

from benchmarks.run import PY, RESULTS, SPARK_SUBMIT, Job, job_config, simulate
from benchmarks.throughput import KafkaLag

SOAK = ROOT / "var" / "soak"
SAMPLE_S = 30
# Last window against first: within this fraction is "flat" (the 20 %).
FLAT = 0.20
# A G1 pause in the unified GC log: "... GC(12) Pause Young (Normal) (G1 Evacuation Pause) 512M->128M(1024M) 5.1ms".
_GC_LINE = re.compile(r"^\[(?P<uptime>[\d.]+)s\].*GC\(\d+\) Pause .* (?P<before>\d+)M->(?P<after>\d+)M\(\d+M\)")


def job_rss_bytes(pid: int) -> int:
    """Resident memory of the job's process tree: spark-submit's Python driver and its JVM."""
    total = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def heap_after_gc(gc_log: Path) -> list[tuple[float, int]]:
    """(JVM uptime in s, heap MiB after the pause) of every GC pause in the log."""
    if not gc_log.exists():
        return []
    found = (_GC_LINE.match(line) for line in gc_log.read_text().splitlines())
    return [(float(m["uptime"]), int(m["after"])) for m in found if m]


def sample(pid: int, config, dsn: str) -> dict:
    with connect(dsn) as conn:
        state = conn.execute("SELECT state_rows, state_memory_bytes FROM batch_metrics"
                             " WHERE state_rows IS NOT NULL ORDER BY finished_at DESC LIMIT 1").fetchone()
        postgres = dict(conn.execute(
            "SELECT relname::text, pg_total_relation_size(c.oid) FROM pg_class c WHERE relname = ANY(%s)"
            " AND relkind = 'r' AND relnamespace = 'public'::regnamespace", (list(POSTGRES_TABLES),)).fetchall())
    return {"t": time.time(), "rss_bytes": job_rss_bytes(pid),
            "state_rows": state[0] if state else None, "state_memory_bytes": state[1] if state else None,
            "files_on_disk": {t: data_files_on_disk(config.table_path(t)) for t in TABLES},
            "log_bytes": {t: bytes_under(f"{config.table_path(t)}/_delta_log") for t in TABLES},
            "checkpoint_bytes": bytes_under(checkpoint_location(config)),
            "postgres_bytes": postgres}


def batch_durations(dsn: str, since: datetime, until: datetime) -> dict:
    with connect(dsn) as conn:
        rows = [float(r[0]) for r in conn.execute(
            "SELECT extract(epoch FROM finished_at - started_at) FROM batch_metrics"
            " WHERE finished_at BETWEEN %s AND %s AND input_rows > 0", (since, until))]
    if len(rows) < 2:
        return {"batches": len(rows)}
    return {"batches": len(rows), "p50_s": round(statistics.median(rows), 2),
            "p95_s": round(statistics.quantiles(rows, n=20)[18], 2), "max_s": round(max(rows), 2)}


class Maintenance(threading.Thread):
    """``jobs/maintain_lake.py`` every ``every_s`` seconds (the first after one period) until stopped."""

    def __init__(self, config_path: Path, every_s: float, log: Path):
        super().__init__(daemon=True)
        self.config_path, self.every_s, self.log = config_path, every_s, log
        self.runs: list[dict] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            t0 = time.time()
            with open(self.log, "a") as out:
                # At the lowest CPU priority: on this 2-core host it shares the stream's cores (on EMR
                # it runs on workers of its own), and upkeep can wait where detection cannot.
                result = subprocess.run(["nice", "-n", "19", str(SPARK_SUBMIT), "jobs/maintain_lake.py", "--json",
                                         "--config", str(self.config_path)],
                                        cwd=ROOT, stdout=subprocess.PIPE, stderr=out, text=True)
            reports = json.loads(result.stdout)["tables"] if result.returncode == 0 else []
            self.runs.append({"started": t0, "seconds": round(time.time() - t0, 1), "exit": result.returncode,
                              "tables": {r["table"]: r for r in reports if "table" in r}})
            print(json.dumps({"maintenance": {"exit": result.returncode, "seconds": self.runs[-1]["seconds"]}}),
                  flush=True)


def window_summary(i: int, t0: float, t1: float, samples: list[dict], heap: list[tuple[float, int]], jvm_t0: float,
                   latency: dict, batches: dict) -> dict:
    inside = [s for s in samples if t0 <= s["t"] <= t1]
    heaps = [mib for uptime, mib in heap if t0 <= jvm_t0 + uptime <= t1]
    last = inside[-1] if inside else {}
    return {
        "window": i, "detection_ms": latency, "batch": batches,
        "rss_mib": round(statistics.median(s["rss_bytes"] for s in inside) / 2**20) if inside else None,
        "heap_after_gc_mib": {"median": statistics.median(heaps), "max": max(heaps), "pauses": len(heaps)}
        if heaps else None,
        "state_rows": last.get("state_rows"), "state_memory_mib": round((last.get("state_memory_bytes") or 0) / 2**20, 1),
        "files_on_disk": last.get("files_on_disk"), "log_mib": {t: round(b / 2**20, 2) for t, b in
                                                                 (last.get("log_bytes") or {}).items()},
        "checkpoint_mib": round((last.get("checkpoint_bytes") or 0) / 2**20, 1),
        "postgres_mib": {t: round(b / 2**20, 2) for t, b in (last.get("postgres_bytes") or {}).items()},
    }


def flatness(first: dict, last: dict) -> dict:
    """Last window against the first for what must stay flat: ratio and whether within ``FLAT``."""
    pairs = {"detection_p99_ms": (first["detection_ms"].get("p99"), last["detection_ms"].get("p99")),
             "batch_p50_s": (first["batch"].get("p50_s"), last["batch"].get("p50_s")),
             "rss_mib": (first["rss_mib"], last["rss_mib"]),
             "heap_after_gc_median_mib": ((first["heap_after_gc_mib"] or {}).get("median"),
                                          (last["heap_after_gc_mib"] or {}).get("median"))}
    out = {}
    for name, (a, b) in pairs.items():
        ratio = round(b / a, 3) if a and b is not None else None
        out[name] = {"first": a, "last": b, "ratio": ratio, "flat": ratio is not None and ratio <= 1 + FLAT}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="simulated traffic (default: %(default)s)")
    parser.add_argument("--window-minutes", type=int, default=10, help="one simulator run and one row of the report")
    parser.add_argument("--maintain-every-minutes", type=float, default=15)
    parser.add_argument("--load-level", default="normal")
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--report", action="store_true", help="only render soak.md and soak.png again from soak.json")
    args = parser.parse_args(argv)
    if args.report:
        if not (RESULTS / "soak.json").exists():
            raise UserError(f"no {RESULTS / 'soak.json'}: run the soak first")
        report(json.loads((RESULTS / "soak.json").read_text()), postgres_dsn(load_config(SOAK / "job.yaml"), "batch"))
        return
    if args.minutes < 2 * args.window_minutes or args.window_minutes < 1:
        raise UserError("--minutes must be at least two windows (first and last are compared)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shutil.rmtree(SOAK, ignore_errors=True)
    config_path = job_config(Path(args.config), SOAK)
    config = load_config(config_path)
    dsn = postgres_dsn(config, "batch")
    from fraud.registry import Registry

    if Registry.for_config(config).current_version() is None:
        raise UserError("no registered model: run `make demo` once (it trains and registers one)")
    lag = KafkaLag(config, Path(checkpoint_location(config)))
    produced_before = lag.end_offsets()
    gc_log = SOAK / "gc.log"
    started = time.time()
    job = Job(config_path, SOAK / "job.log", [f"-Xlog:gc:file={gc_log}:uptime"])
    # "latest" is resolved at the query's first trigger and written to the checkpoint: a record sent
    # before that is before the job's starting point, not lost by it. The traffic starts after.
    starting_offsets = Path(checkpoint_location(config)) / "sources" / "0" / "0"
    if not wait_until(lambda: starting_offsets.exists() or job.proc.poll() is not None, 300, interval_s=0.2) \
            or job.proc.poll() is not None:
        job.stop()
        raise UserError(f"the job did not start reading: see {SOAK / 'job.log'}")
    jvm_t0 = started  # the JVM's uptime counts from about here (its start-up is in the first window's margin)
    maintenance = Maintenance(config_path, args.maintain_every_minutes * 60, SOAK / "maintenance.log")
    samples: list[dict] = []
    windows: list[dict] = []
    stamp = datetime.now(timezone.utc).strftime("%H%M%S")
    try:
        maintenance.start()
        for i in range(args.minutes // args.window_minutes):
            test_id = f"soak-{stamp}-w{i}"
            since, t0 = datetime.now(timezone.utc), time.time()
            sim = threading.Thread(target=simulate, args=(config_path, test_id, "--load-level", args.load_level,
                                                          "--duration", str(args.window_minutes * 60)))
            sim.start()
            while sim.is_alive():
                samples.append(sample(job.proc.pid, config, dsn))
                sim.join(SAMPLE_S)  # the sampling period, not synchronisation
            t1 = time.time()
            if not wait_until(lambda: run_processed(dsn, test_id), 900, interval_s=1):
                raise UserError(f"the job has not processed window {i} ({test_id}) within 900 s: see {SOAK / 'job.log'}")
            result = evaluate_run(dsn, test_id)
            windows.append(window_summary(i, t0, t1, samples, heap_after_gc(gc_log), jvm_t0, result["latency_ms"],
                                          batch_durations(dsn, since, datetime.now(timezone.utc))))
            print(json.dumps({"soak_window": windows[-1]}), flush=True)
        maintenance.stopped.set()
        maintenance.join()
        wait_until(lambda: lag() == 0, 900, interval_s=1)
        errors = sum(1 for line in (SOAK / "job.log").read_text().splitlines() if " ERROR " in line)
    finally:
        maintenance.stopped.set()
        lag_end = lag.end_offsets()
        lag.close()
        job.stop()
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip(),
               "minutes": args.minutes, "window_minutes": args.window_minutes, "load_level": args.load_level,
               "maintain_every_minutes": args.maintain_every_minutes, "windows": windows,
               "maintenance_runs": maintenance.runs, "job_log_errors": errors, "job_exit": job.proc.returncode,
               "records_produced": lag_end - produced_before, "bronze_rows_at_stop": count_bronze(config_path)}
    drain_stage(config_path)
    results["bronze_rows"] = count_bronze(config_path)
    results["nothing_lost"] = results["bronze_rows"] == results["records_produced"]
    results["flat"] = flatness(windows[0], windows[-1])
    results["series"] = {"samples": samples, "heap_after_gc": heap_after_gc(gc_log), "started": started}
    report(results, dsn)


def report(results: dict, dsn: str) -> None:
    """soak.json, soak.md and soak.png from the results (``--report``: again, from soak.json)."""
    until = datetime.fromisoformat(results["date"]).timestamp()
    results["heap_floor_mib"] = heap_floors(results)
    results["maintenance_split"] = maintenance_split(dsn, results["maintenance_runs"], results["series"]["started"],
                                                     until)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(results, indent=1, default=str))
    (RESULTS / "soak.md").write_text(soak_table(results) + "\n")
    plot(results, RESULTS / "soak.png")
    print(soak_table(results))


def heap_floors(results: dict) -> list[int | None]:
    """Per window, the lowest heap after a collection: G1's young collections leave old objects
    behind until a mixed collection clears them (a sawtooth), so the floor is what stays live."""
    step = results["window_minutes"] * 60
    heap = results["series"]["heap_after_gc"]
    floors = []
    for i in range(len(results["windows"])):
        inside = [mib for uptime, mib in heap if i * step <= uptime < (i + 1) * step]
        floors.append(min(inside) if inside else None)
    return floors


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def maintenance_split(dsn: str, runs: list[dict], since_epoch: float, until_epoch: float) -> dict:
    """Detection latency and batch durations while a maintenance run was going on, and outside: on
    this host they share two cores (on EMR the maintenance job has workers of its own)."""
    intervals = [(m["started"], m["started"] + m["seconds"]) for m in runs]

    def during(epoch: float) -> bool:
        return any(a <= epoch <= b for a, b in intervals)

    with connect(dsn) as conn:
        alerted = conn.execute(
            "SELECT extract(epoch FROM b.finished_at)::float8,"
            " (extract(epoch FROM pg_xact_commit_timestamp(t.xmin) - t.produced_at) * 1000)::float8, t.query_id"
            " FROM alert_transactions t JOIN batch_metrics b USING (query_id, batch_id) JOIN alerts a USING (alert_id)"
            " WHERE a.test_id LIKE %s AND b.finished_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
            ("soak-%", since_epoch, until_epoch)).fetchall()
        queries = sorted({q for _, _, q in alerted})
        batches = conn.execute(
            "SELECT extract(epoch FROM finished_at)::float8, extract(epoch FROM finished_at - started_at)::float8"
            " FROM batch_metrics WHERE query_id = ANY(%s) AND input_rows > 0"
            " AND finished_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)", (queries, since_epoch, until_epoch)).fetchall()
    out = {}
    for name, inside in (("during", True), ("outside", False)):
        latency = [ms for t, ms, _ in alerted if during(t) == inside]
        seconds = [s for t, s in batches if during(t) == inside]
        out[name] = {"alerted_events": len(latency), "detection_p50_ms": _percentile(latency, 0.5),
                     "detection_p99_ms": _percentile(latency, 0.99), "batches": len(seconds),
                     "batch_p50_s": _percentile(seconds, 0.5), "batch_p95_s": _percentile(seconds, 0.95)}
    return out


def drain_stage(config_path: Path) -> None:
    """The job once more, ``--once``: the batches its lake writer had staged beside the checkpoint when
    it was stopped (the alert path is ahead of the lake) are written, as by any restart."""
    result = subprocess.run([str(SPARK_SUBMIT), "jobs/stream_fraud.py", "--config", str(config_path), "--once"],
                            cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"the job's restart to drain its stage failed: {result.stderr.strip().splitlines()[-1:]}")


def count_bronze(config_path: Path) -> int:
    """Bronze rows, counted by a Spark process of its own once the job has stopped."""
    code = ("import sys; from fraud.config import load_config; from fraud.spark import build_session; "
            "c = load_config(sys.argv[1]); s = build_session(c, app_name='soak-count'); "
            "print(s.read.format('delta').load(c.table_path('bronze')).count())")
    result = subprocess.run([PY, "-c", code, str(config_path)], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def soak_table(r: dict) -> str:
    first, last = r["windows"][0], r["windows"][-1]

    def row(name, a, b, flat=None):
        mark = "" if flat is None else (" flat" if flat else " **grew**")
        return f"| {name} | {a} | {b} |{mark} |"

    f = r["flat"]
    lines = [f"Soak: {r['minutes']} min of {r['load_level']} load, maintenance every {r['maintain_every_minutes']:g} min,"
             f" commit {r['commit']}, {r['date']}", "",
             f"| | first {r['window_minutes']} min | last {r['window_minutes']} min | |", "|---|---|---|---|"]
    lines.append(row("detection p50 / p99 (ms)", f"{first['detection_ms'].get('p50')} / {first['detection_ms'].get('p99')}",
                     f"{last['detection_ms'].get('p50')} / {last['detection_ms'].get('p99')}", f["detection_p99_ms"]["flat"]))
    lines.append(row("batch p50 / p95 (s)", f"{first['batch'].get('p50_s')} / {first['batch'].get('p95_s')}",
                     f"{last['batch'].get('p50_s')} / {last['batch'].get('p95_s')}", f["batch_p50_s"]["flat"]))
    lines.append(row("job RSS, median (MiB)", first["rss_mib"], last["rss_mib"], f["rss_mib"]["flat"]))
    heap = [(w["heap_after_gc_mib"] or {}) for w in (first, last)]
    lines.append(row("JVM heap after GC, median / max (MiB)", f"{heap[0].get('median')} / {heap[0].get('max')}",
                     f"{heap[1].get('median')} / {heap[1].get('max')}", f["heap_after_gc_median_mib"]["flat"]))
    lines.append(row("state rows / memory (MiB)", f"{first['state_rows']} / {first['state_memory_mib']}",
                     f"{last['state_rows']} / {last['state_memory_mib']}"))
    for t in ("bronze", "silver", "gold"):
        lines.append(row(f"{t}: data files on disk / log (MiB)", f"{first['files_on_disk'][t]} / {first['log_mib'][t]}",
                         f"{last['files_on_disk'][t]} / {last['log_mib'][t]}"))
    lines.append(row("checkpoint (MiB)", first["checkpoint_mib"], last["checkpoint_mib"]))
    pg = [sum(w["postgres_mib"].values()) for w in (first, last)]
    lines.append(row("PostgreSQL tables (MiB)", round(pg[0], 1), round(pg[1], 1)))
    split = r.get("maintenance_split")
    if split:
        d, o = split["during"], split["outside"]
        lines += ["", f"While a maintenance run was going on ({d['batches']} batches) / outside ({o['batches']}):"
                  f" detection p50 {d['detection_p50_ms']} / {o['detection_p50_ms']} ms, p99 {d['detection_p99_ms']} /"
                  f" {o['detection_p99_ms']} ms; batch p50 {d['batch_p50_s']} / {o['batch_p50_s']} s, p95"
                  f" {d['batch_p95_s']} / {o['batch_p95_s']} s."]
    if r.get("heap_floor_mib"):
        lines += ["", f"JVM heap floor per window (the lowest after a collection, MiB): {r['heap_floor_mib']}."]
    per_window = ", ".join(f"{w['detection_ms'].get('p99')}" for w in r["windows"])
    batch_p95 = ", ".join(f"{w['batch'].get('p95_s')}" for w in r["windows"])
    lines += ["", f"Every window, in order: detection p99 (ms) {per_window}; batch p95 (s) {batch_p95}."]
    live = [{t: f"{m['tables'][t]['live_files_before']}->{m['tables'][t]['live_files_after']}"
             for t in ("bronze", "silver", "gold") if t in m["tables"]} for m in r["maintenance_runs"]]
    lines += [f"Maintenance runs: {len(r['maintenance_runs'])} (exit codes {[m['exit'] for m in r['maintenance_runs']]},"
              f" {[m['seconds'] for m in r['maintenance_runs']]} s); live files per table before->after each: {live}.",
              f"Records produced {r['records_produced']:,}; bronze rows when the job was stopped"
              f" {r['bronze_rows_at_stop']:,} (the rest staged beside the checkpoint), after a restart"
              f" {r['bronze_rows']:,} ({'nothing lost' if r['nothing_lost'] else '**MISMATCH**'}); ERROR lines in the"
              f" job's log: {r['job_log_errors']}."]
    return "\n".join(lines)


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, t0 = r["series"]["samples"], r["series"]["started"]
    minutes = [(s["t"] - t0) / 60 for s in samples]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6))
    axes[0][0].plot(minutes, [s["rss_bytes"] / 2**20 for s in samples], label="job RSS")
    heap = r["series"]["heap_after_gc"]
    axes[0][0].plot([u / 60 for u, _ in heap], [mib for _, mib in heap], ".", ms=2, label="heap after GC")
    axes[0][0].set_ylabel("MiB")
    axes[0][0].legend(fontsize=7)
    mids = [(w["window"] + 0.5) * r["window_minutes"] for w in r["windows"]]
    axes[0][1].plot(mids, [w["detection_ms"].get("p99") for w in r["windows"]], marker="o", label="detection p99")
    axes[0][1].plot(mids, [w["detection_ms"].get("p50") for w in r["windows"]], marker="o", label="detection p50")
    axes[0][1].set_ylabel("ms")
    axes[0][1].legend(fontsize=7)
    for t in ("bronze", "silver", "gold"):
        axes[1][0].plot(minutes, [s["files_on_disk"][t] for s in samples], label=f"{t} files on disk")
    for m in r["maintenance_runs"]:
        axes[1][0].axvline((m["started"] - t0) / 60, color="grey", lw=0.5)
    axes[1][0].set_ylabel("data files (grey: maintenance)")
    axes[1][0].legend(fontsize=7)
    axes[1][1].plot(minutes, [(s["state_rows"] or 0) / 1000 for s in samples], label="state rows (k)")
    axes[1][1].plot(minutes, [sum(s["postgres_bytes"].values()) / 2**20 for s in samples], label="PostgreSQL MiB")
    axes[1][1].legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("minutes")
    fig.suptitle(f"Soak: {r['minutes']} min, {r['load_level']} load")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    run(main)
