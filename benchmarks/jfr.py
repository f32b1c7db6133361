"""Where the job's JVM spends its CPU: a Java Flight Recorder recording of the benchmark's job,
summarised as hot methods and collapsed stacks (the input of any flame graph tool).

The recording is JFR's default profile (execution samples every 20 ms per running Java thread,
~1 % overhead); ``jdk.ExecutionSample`` events only, read with the JDK's own ``jfr`` tool.

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


def stacks(recording: Path):
    """Each execution sample's stack, root first, as method names (``package.Class.method``)."""
    out = subprocess.run([jfr_tool(), "print", "--events", "jdk.ExecutionSample", "--stack-depth",
                          str(STACK_DEPTH), str(recording)], capture_output=True, text=True, check=True).stdout
    frames: list[str] = []
    in_stack = False
    for line in out.splitlines():
        if line.strip().startswith("stackTrace = ["):
            in_stack, frames = True, []
        elif in_stack and line.strip() == "]":
            in_stack = False
            yield list(reversed(frames))
        elif in_stack:
            match = _FRAME.match(line)
            if match:
                frames.append(match.group(1))


def summarize(recording: Path, out: Path, top: int = 30) -> dict:
    """Hot methods by self and by total samples, and the collapsed stacks (``out``.collapsed)."""
    self_counts: Counter = Counter()
    total_counts: Counter = Counter()
    collapsed: Counter = Counter()
    samples = 0
    for stack in stacks(recording):
        if not stack:
            continue
        samples += 1
        self_counts[stack[-1]] += 1
        for method in set(stack):
            total_counts[method] += 1
        collapsed[";".join(stack)] += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".collapsed").write_text("".join(f"{s} {n}\n" for s, n in collapsed.most_common()))

    def share(counter: Counter) -> list[dict]:
        return [{"method": m, "samples": n, "share": round(n / samples, 4)} for m, n in counter.most_common(top)]

    summary = {"samples": samples, "self": share(self_counts), "total": share(total_counts)}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jfr", description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = parser.parse_args(argv)
    summary = summarize(args.recording, args.out)
    print(f"{summary['samples']:,} samples; self time, top 15:")
    for row in summary["self"][:15]:
        print(f"  {row['share']:6.1%}  {row['method']}")


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
