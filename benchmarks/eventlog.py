"""Spark jobs and Delta commits per micro-batch, counted from the benchmark job's Spark event log
and its lake: the fixed costs each batch pays whatever its size.

Jobs are grouped by what started them: the name of their last stage (``collect``, ``save``,
``localCheckpoint``, ``toArrow``...: the action, without its call site).

    .venv/bin/python -m benchmarks.eventlog var/bench/events var/bench/lake --batches 120
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def spark_jobs(event_dir: Path) -> dict:
    """Jobs (and their stages and tasks) in every event log under ``event_dir``, by call site."""
    jobs: Counter = Counter()
    stages = tasks = 0
    for path in sorted(p for p in event_dir.rglob("*") if p.is_file()):  # Spark 4: rolling logs in a folder
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.startswith('{"Event":"SparkListenerJobStart"'):
                    event = json.loads(line)
                    names = [info.get("Stage Name", "?") for info in event.get("Stage Infos", [])] or ["?"]
                    jobs[max(names, key=lambda n: n != "?").split(" at ")[0]] += 1
                    stages += len(event.get("Stage Infos", []))
                elif line.startswith('{"Event":"SparkListenerTaskEnd"'):
                    tasks += 1
    return {"jobs": sum(jobs.values()), "stages_planned": stages, "tasks": tasks, "jobs_by_call": dict(jobs.most_common())}


def delta_commits(lake: Path) -> dict[str, int]:
    """Commits per table of the lake (``_delta_log/<version>.json``)."""
    return {table.name: sum(1 for _ in (table / "_delta_log").glob("*.json"))
            for table in sorted(lake.iterdir()) if (table / "_delta_log").is_dir()}


def per_batch(event_dir: Path, lake: Path, batches: int) -> dict:
    jobs = spark_jobs(event_dir)
    commits = delta_commits(lake)
    return {
        "batches": batches,
        "spark_jobs_per_batch": round(jobs["jobs"] / batches, 2),
        "tasks_per_batch": round(jobs["tasks"] / batches, 1),
        "jobs_per_batch_by_call": {k: round(v / batches, 2) for k, v in jobs["jobs_by_call"].items()},
        "delta_commits_per_batch": round(sum(commits.values()) / batches, 2),
        "delta_commits_by_table": commits,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eventlog", description=__doc__.split("\n\n")[0])
    parser.add_argument("event_dir", type=Path)
    parser.add_argument("lake", type=Path)
    parser.add_argument("--batches", type=int, required=True, help="micro-batches the job ran")
    args = parser.parse_args(argv)
    print(json.dumps(per_batch(args.event_dir, args.lake, args.batches), indent=2))


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
