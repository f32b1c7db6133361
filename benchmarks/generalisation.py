"""Does the model generalise to traffic it never saw? Train on the history's three profiles, choose
the alert threshold on their held-out seeds, evaluate there, on the default profile alone and on
``eu_marketplace``, which no model trains on.

    .venv/bin/python benchmarks/generalisation.py --events 30000 [--categorical domain,...] [--name NAME]

No Kafka or PostgreSQL: the events go through the stream's own chain in batch
(``fraud.pipeline.silver_from_records``: parse, expectations, velocity, static features), the
forest is fitted as the training job fits it (``fraud.model.forest.fit_model``) and evaluated with
the training job's metrics (``fraud.model.evaluation``): per domain, sequence recall and alert
precision at the chosen threshold. ``--categorical`` replaces the model's categorical inputs (the
experiment behind leaving vocabularies out). Results: stdout and
``benchmarks/results/generalisation[-NAME].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "dev")]
from fraud_simulator.history import HISTORY  # noqa: E402

TRAINING_PROFILES = [r.profile for r in HISTORY if r.role == "train"]  # the training job's history
HELD_OUT = "eu_marketplace"  # conf/*.yaml model.gate.out_of_profile


def simulate(work: Path, profile: str, seed: int, events: int) -> Path:
    path = work / f"{profile}-{seed}.jsonl"
    subprocess.run([sys.executable, "-m", "fraud_simulator", "--events", str(events), "--seed", str(seed),
                    "--profile", profile, "--test-id", f"{profile}-{seed}",
                    "--fraud-rate", "0.3", "--output", str(path)], check=True, capture_output=True, cwd=ROOT)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--events", type=int, default=30000, help="events per simulated run")
    parser.add_argument("--categorical", help="comma-separated categorical model inputs instead of "
                        "fraud.schemas.CATEGORICAL_FEATURES (an experiment: which vocabularies generalise)")
    parser.add_argument("--name", help="results file suffix (one file per variant)")
    args = parser.parse_args()
    os.environ["TQDM_DISABLE"] = "1"  # the training gate's GX progress bars

    import fraud.model.forest as forest
    from fraud.config import load_config
    from fraud.model.evaluation import evaluate
    from fraud.model.forest import fit_model, with_label
    from fraud.parse import kafka_records
    from fraud.pipeline import silver_from_records
    from fraud.spark import build_session

    if args.categorical is not None:
        forest.CATEGORICAL_FEATURES = [c for c in args.categorical.split(",") if c]
    config = load_config(args.config)
    spark = build_session(config, app_name="generalisation-bench")
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="generalisation-"))

    def silver(profile: str, seed: int):
        lines = simulate(work, profile, seed, args.events).read_text().splitlines()
        return silver_from_records(kafka_records(spark, config, lines), config)

    t0 = time.monotonic()
    train_df = None
    for i, profile in enumerate(TRAINING_PROFILES):
        part = silver(profile, 100 + i)
        train_df = part if train_df is None else train_df.unionByName(part)
    # The threshold is chosen on held-out seeds of the training profiles, as the training job does.
    held_in = {p: with_label(silver(p, 200 + i)).cache() for i, p in enumerate(TRAINING_PROFILES)}
    held_out = with_label(silver(HELD_OUT, 300)).cache()
    train_df = train_df.cache()
    print(f"simulated and built silver in {time.monotonic() - t0:.0f} s", flush=True)

    model, counts, seconds = fit_model(config, train_df, progress=lambda _: None)
    mixed = held_in["default"].unionByName(held_in["latam_wallets"]).unionByName(held_in["apac_super_app"])
    inside = evaluate(model, mixed, config)
    threshold = inside["alert_threshold"]
    results = {"train_rows": sum(counts.values()), "fit_s": seconds, "threshold": threshold}
    print(f"trained on {', '.join(TRAINING_PROFILES)}: {results['train_rows']:,} rows, fit {seconds} s, "
          f"threshold {threshold} (chosen on their held-out seeds)")
    for name, frame in (("training profiles, held-out seeds", mixed), ("default profile", held_in["default"]),
                        (f"{HELD_OUT} (never trained on)", held_out)):
        metrics = inside if frame is mixed else evaluate(model, frame, config, threshold=threshold)
        by_domain = metrics["alerting"][f"{threshold:.2f}"]
        results[name] = {"macro_f1": metrics["macro_f1"], "by_domain": by_domain,
                         "per_class_f1": metrics["per_class_f1"]}
        print(f"  {name:36} macro F1 {metrics['macro_f1']:.3f}  " + "  ".join(
            f"{d} R {f['recall']} P {f['precision']}" for d, f in by_domain.items()), flush=True)
    print("  out-of-profile F1 per class: " + ", ".join(
        f"{c} {f:.2f}" for c, f in results[f"{HELD_OUT} (never trained on)"]["per_class_f1"].items()))
    out = ROOT / "benchmarks" / "results" / (f"generalisation-{args.name}.json" if args.name else "generalisation.json")
    out.write_text(json.dumps({"events_per_run": args.events, "held_out": HELD_OUT,
                               "categorical": forest.CATEGORICAL_FEATURES,
                               "training_profiles": TRAINING_PROFILES, "results": results}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
