"""Where the job's JVM spends its CPU: a Java Flight Recorder recording of the benchmark's job,
summarised as hot methods and collapsed stacks (the input of any flame graph tool).

The recording is JFR's default profile (execution samples every 20 ms per running Java thread,
~1 % overhead); ``jdk.ExecutionSample`` events only, read with the JDK's own ``jfr`` tool.

Samples are also split by thread: Spark's task threads (``Executor task launch worker ...``) are
the work executors do on a cluster; every other thread (the stream's execution thread, the Py4J
threads the Python driver calls in through, Delta's commit threads) stays on the driver. That split
sizes the EMR Serverless driver against its executors.

    .venv/bin/python -m benchmarks.jfr var/bench/job.jfr --out benchmarks/results/profile
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

STACK_DEPTH = 96
_FRAME = re.compile(r"^\s+([\w$.<>/\[\]-]+)\(")  # "    pkg.Class.method(ArgType, ...) line: 12"
_THREAD = re.compile(r'^\s+sampledThread = "(.*)" \(javaThreadId')
TASK_THREAD = "Executor task launch worker"


def recording_options(path: Path) -> str:
    """JVM options that record the whole life of the JVM to ``path``."""
    return f"-XX:StartFlightRecording=settings=default,filename={path},dumponexit=true"


def jfr_tool() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidates = [Path(java_home) / "bin" / "jfr"] if java_home else []
    found = shutil.which("jfr")
    candidates += [Path(found)] if found else []
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    java = shutil.which("java")
    if java:
        real = Path(os.path.realpath(java)).parent / "jfr"
        if real.exists():
            return str(real)
    raise FileNotFoundError("the JDK's jfr tool is not on PATH (nor in JAVA_HOME/bin)")


def thread_group(name: str) -> str:
    """A thread's name without its numbers and bracketed ids (``Executor task launch worker for task
    3.0 in stage 5.0 (TID 10)`` -> ``Executor task launch worker``; ``Thread-12`` -> ``Thread-``)."""
    if name.startswith(TASK_THREAD):
        return TASK_THREAD
    return re.sub(r"\[.*?\]|\(.*?\)|[\d.]+", "", name).strip() or name


def samples(recording: Path):
    """Each execution sample of the recording, as ``parse_samples`` gives them."""
    out = subprocess.run([jfr_tool(), "print", "--events", "jdk.ExecutionSample", "--stack-depth",
                          str(STACK_DEPTH), str(recording)], capture_output=True, text=True, check=True).stdout
    return parse_samples(out)


def parse_samples(out: str):
    """Each sample in ``jfr print`` text as (thread group, stack root first as ``package.Class.method``)."""
    frames: list[str] = []
    in_stack, thread = False, "?"
    for line in out.splitlines():
        if not in_stack and (match := _THREAD.match(line)):
            thread = thread_group(match.group(1))
        elif line.strip().startswith("stackTrace = ["):
            in_stack, frames = True, []
        elif in_stack and line.strip() == "]":
            in_stack = False
            yield thread, list(reversed(frames))
        elif in_stack:
            match = _FRAME.match(line)
            if match:
                frames.append(match.group(1))


def summarize(recording: Path, out: Path, top: int = 30) -> dict:
    """Hot methods by self and by total samples, samples by thread group (and the share on Spark's
    task threads), and the collapsed stacks (``out``.collapsed)."""
    self_counts: Counter = Counter()
    total_counts: Counter = Counter()
    collapsed: Counter = Counter()
    threads: Counter = Counter()
    count = 0
    for thread, stack in samples(recording):
        if not stack:
            continue
        count += 1
        threads[thread] += 1
        self_counts[stack[-1]] += 1
        for method in set(stack):
            total_counts[method] += 1
        collapsed[";".join(stack)] += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".collapsed").write_text("".join(f"{s} {n}\n" for s, n in collapsed.most_common()))

    def share(counter: Counter, key: str = "method") -> list[dict]:
        return [{key: m, "samples": n, "share": round(n / count, 4)} for m, n in counter.most_common(top)]

    summary = {"samples": count, "task_thread_share": round(threads[TASK_THREAD] / count, 4) if count else None,
               "threads": share(threads, "thread"), "self": share(self_counts), "total": share(total_counts)}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jfr", description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = parser.parse_args(argv)
    summary = summarize(args.recording, args.out)
    print(f"{summary['samples']:,} samples, {summary['task_thread_share']:.1%} on Spark's task threads; "
          "self time, top 15:")
    for row in summary["self"][:15]:
        print(f"  {row['share']:6.1%}  {row['method']}")


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
