"""The training history: simulator runs over several profiles (domain randomisation), one plan for
``make demo`` and the tests.

A model trained on one simulator's exact surface learns its currencies, names and timings; trained
on the same patterns under three profiles it learns the behaviour (docs/model.md). The held-out
profile of the gate (``model.gate.out_of_profile``, ``eu_marketplace``) is not among them.

``python -m fraud_simulator.history DIR`` writes the runs missing from DIR and the gate's
out-of-profile events into the model registry, and prints the training job's arguments (``--train-test-id ... --eval-test-id ...``).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import DOMAINS, Config, load_config
from fraud.registry import Registry


@dataclass(frozen=True)
class HistoryRun:
    role: str  # "train" or "eval" (held-out seeds of the same profiles: they choose the alert threshold)
    profile: str
    seed: int
    events: int

    @property
    def test_id(self) -> str:
        return f"history-{self.profile}-seed{self.seed}"


HISTORY = (
    HistoryRun("train", "default", 7, 50_000),
    HistoryRun("train", "latam_wallets", 17, 25_000),
    HistoryRun("train", "apac_super_app", 27, 25_000),
    HistoryRun("eval", "default", 8, 20_000),
    HistoryRun("eval", "latam_wallets", 18, 10_000),
    HistoryRun("eval", "apac_super_app", 28, 10_000),
)


def test_ids(role: str) -> list[str]:
    return [r.test_id for r in HISTORY if r.role == role]


def simulate_file(config: Config, path: Path, *, profile: str, seed: int, events: int, test_id: str) -> Path:
    """One deterministic file-mode run of all domains under ``profile`` (a packaged name or a file)."""
    from fraud_simulator.profile import load_profile
    from fraud_simulator.run import RunOptions, run_simulation

    run_simulation(config, RunOptions(domains=DOMAINS, rate_per_s=100.0, events=events, duration_s=None, seed=seed,
                                      test_id=test_id, output=str(path), profile=load_profile(profile)))
    return path


def write_history(config: Config, folder: Path) -> list[Path]:
    """The plan's runs as JSON-lines files in ``folder`` (one per run; existing files are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in HISTORY:
        path = folder / f"{r.test_id}.jsonl"
        if not path.exists():
            simulate_file(config, path, profile=r.profile, seed=r.seed, events=r.events, test_id=r.test_id)
        paths.append(path)
    return paths


def write_gate_events(config: Config) -> str:
    """The gate's out-of-profile events (``model.gate.out_of_profile``: a profile no training run
    uses) into the model registry, where training reads them; kept when they are there already."""
    gate = config.model.gate.out_of_profile
    registry = Registry.for_config(config)
    about = {"profile": gate.profile, "seed": gate.seed, "events": gate.events,
             "test_id": f"out-of-profile-{gate.profile}-seed{gate.seed}"}
    try:
        if registry.gate_events()[1] == about:
            return registry.root_uri
    except UserError:
        pass  # none yet
    with tempfile.TemporaryDirectory(prefix="out-of-profile-") as work:
        path = simulate_file(config, Path(work) / "events.jsonl", profile=gate.profile, seed=gate.seed,
                             events=gate.events, test_id=about["test_id"])
        registry.write_gate_events(path.read_text().splitlines(), about)
    return registry.root_uri


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud_simulator.history",
                            description="Write the training history (simulator runs over several profiles) to "
                                        "DIR, the out-of-profile gate's events to the model registry, and print "
                                        "the arguments of jobs/train_model.py for the history.")
    parser.add_argument("dir", nargs="?", help="folder for the JSON-lines files (existing files are kept)")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--gate-only", action="store_true",
                        help="only the gate's events (e.g. into the AWS registry before the first training)")
    args = parser.parse_args(argv)
    if args.dir is None and not args.gate_only:
        parser.error("DIR is needed unless --gate-only")
    config = load_config(args.config)
    print(f"gate events in {write_gate_events(config)}", file=sys.stderr)
    if args.gate_only:
        return 0
    for path in write_history(config, Path(args.dir)):
        print(path, file=sys.stderr)
    print(" ".join([f"--train-test-id {t}" for t in test_ids("train")] + [f"--eval-test-id {t}" for t in test_ids("eval")]))
    return 0


if __name__ == "__main__":
    run(main)
