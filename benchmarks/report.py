"""The benchmark results as a Markdown table (docs/benchmarks.md, benchmarks.page) and PNG plots (``benchmarks/results/``)."""

from __future__ import annotations

from pathlib import Path

GOALS = {
    "scoring.ratio_in_process_vs_per_event": (">=", 1000),
    "throughput.sustained_events_per_s": (">=", 10_000),
    "latency.normal.p99_ms": ("<=", 2000),
    "latency.peak.p99_ms": ("<=", 3000),
}


def lookup(results: dict, dotted: str):
    value = results
    for part in dotted.split("."):
        value = (value or {}).get(part)
    return value


def goal_status(results: dict) -> dict[str, dict]:
    """Each goal of the issue: the measured value, the goal, and whether it is met."""
    status = {}
    for key, (op, goal) in GOALS.items():
        value = lookup(results, key)
        met = value is not None and (value >= goal if op == ">=" else value <= goal)
        status[key] = {"value": value, "goal": f"{op} {goal}", "met": met}
    return status


def table(results: dict) -> str:
    s, t, lat, c = results["scoring"], results["throughput"], results["latency"], results["cost"]

    def spread(d: dict) -> str:
        return f"{d['min']}–{d['max']}"

    rows = [
        ("B1 (a) one Spark job per event", f"{s['per_event_ms']} ms/event", spread(s["per_event_ms_spread"]),
         "950 ms"),
        ("B1 (b) one Spark job per 100 events", f"{s['batch100_ms_per_event']} ms/event",
         spread(s["batch100_ms_per_event_spread"]), "12 ms"),
        ("B1 (c) in-process per micro-batch", f"{s['in_process_us_per_event']} µs/event",
         spread(s["in_process_us_per_event_spread"]) + " µs", ""),
        ("B1 ratio (a) / (c)", f"{s['ratio_in_process_vs_per_event']:,}x", "", "goal ≥ 1,000x"),
        ("B2 burst drain (upper bound)", f"{t['burst']['events_per_s']:,} events/s", "", ""),
        ("B2 sustained, lag bounded",
         (f"{t['sustained_events_per_s']:,.0f} events/s for {t['hold_seconds']} s" if t["sustained_events_per_s"]
          else f"no rate held {t['hold_seconds']} s"),
         ", ".join(f"{x['rate_per_s']}{'✓' if x['bounded'] else '✗'}" for x in t["steps"] + t["holds"]),
         "3,700/min = 62/s per API instance; goal 10,000/s"),
        ("B2 CPU per event (job + broker + PostgreSQL)", f"{t['cpu_us_per_event']} µs",
         ", ".join([*(f"{k} {v}" for k, v in t.get("cpu_us_per_event_by_component", {}).items() if k != "all"),
                    f"producer {t['producer_cpu_us_per_event']} µs (apart)"]), "400 µs for 5,000/s on 2 cores"),
    ]
    # The hold the CPU figures above come from: the sustained one, else the last tried.
    hold = next((h for h in t["holds"] if h["bounded"]), (t["holds"] or [{}])[-1])
    held = hold.get("batches") or {}
    if held.get("step_ms"):
        rows.append((f"B2 micro-batch at the {'sustained' if hold.get('bounded') else 'last tried'} hold,"
                     f" {hold['rate_per_s']:,}/s (median ms by step)",
                     f"{held['batch_ms']} ms for {held['records_per_batch']:,.0f} records",
                     ", ".join(f"{k} {v}" for k, v in sorted(held["step_ms"].items(), key=lambda kv: -kv[1])),
                     "lake, bronze, silver, gold: the lake writer's, off the alert path"))
    for level in ("normal", "peak"):
        r = lat[level]
        rows.append((f"B3 latency at {level} (p50 / p95 / p99 / max)",
                     f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['p99_ms']:.0f} / {r['max_ms']:.0f} ms",
                     f"p99 {r['spread_p99_ms'][0]:.0f}–{r['spread_p99_ms'][1]:.0f} over {len(r['runs'])} run(s) "
                     f"of {r['seconds_per_run']} s", "'< 3 s' (never measured); goal p99 ≤ "
                     + ("2 s" if level == "normal" else "3 s")))
    if results.get("startup"):
        up = results["startup"]
        rows.append(("Start-up: launch -> first batch with records committed", f"{up['first_batch_s']} s",
                     f"query running after {up['query_started_s']} s", "part of detection after a restart"))
    rows.append(("Cost per 1M events (EMR Serverless list price)", f"${c['usd_per_million_events']}",
                 f"{c['vcpu_hours_per_million']} vCPU-h", "$0.015–$0.05"))
    lines = ["| benchmark | median | min–max / detail | replaced design / goal |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c_} | {d} |" for a, b, c_, d in rows]
    return "\n".join(lines)


def plots(results: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    s = results["scoring"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = ["(a) job per event", "(b) job per 100", "(c) in-process"]
    values = [s["per_event_ms"], s["batch100_ms_per_event"], s["in_process_us_per_event"] / 1000]
    ax.bar(labels, values, color=["#c44", "#e90", "#2a7"])
    ax.set_yscale("log")
    ax.set_ylabel("ms per event (log)")
    ax.set_title(f"B1 scoring modes: (c) is {s['ratio_in_process_vs_per_event']:,.0f}x cheaper than (a)")
    paths.append(_save(fig, out / "b1_scoring.png"))

    t = results["throughput"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for run in t["steps"] + t["holds"]:
        xs = [(i + 0.5) * 20 for i in range(len(run["lag_window_min"]))]
        ax.plot(xs, run["lag_window_min"], marker="o",
                label=f"{run['rate_per_s']}/s {run['seconds']} s {'bounded' if run['bounded'] else 'growing'}")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("Kafka lag, min per 20 s window")
    ax.set_title("B2 paced rates: lag lower envelope")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "b2_lag.png"))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    keys = ["p50_ms", "p95_ms", "p99_ms", "max_ms"]
    width = 0.38
    for i, level in enumerate(("normal", "peak")):
        ax.bar([k + i * width for k in range(len(keys))], [results["latency"][level][k] / 1000 for k in keys],
               width, label=level)
    ax.set_xticks([k + width / 2 for k in range(len(keys))], [k.removesuffix("_ms") for k in keys])
    ax.set_ylabel("seconds, event produced -> alert committed")
    ax.set_title("B3 detection latency")
    ax.legend()
    paths.append(_save(fig, out / "b3_latency.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
