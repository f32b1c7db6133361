"""Fraud unlike the training data: the registered model and the typology rules on the held-out
profile and on the held-out pattern variants, caught by which.

    .venv/bin/python benchmarks/variants.py [--events 20000] [--seed 4242]

No Kafka or PostgreSQL: events go through the stream's own chain in batch
(``fraud.pipeline.silver_from_records``) and are scored as the stream scores them, model and rules
(``fraud.score.score_silver``), with the model the registry's pointer names (``make demo`` trains
one). Two sets: the gate's out-of-profile events from the registry (``eu_marketplace``, a profile no
training run uses) and the held-out variants (``fraud_simulator.variants``: patterns drawn otherwise,
never drawn by training). Per pattern or variant: fraud sequences caught by the model alone, the
rules alone, both, or missed; per domain: sequence recall and alert precision, all alerts and each
source's (``fraud.model.evaluation.detection_by_source``); and what the rules cost per micro-batch
on the driver. Results: stdout and
``benchmarks/results/variants.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "dev")]


def score(spark, config, model, events: list[dict]):
    """(gold rows as dicts, silver as Arrow) of ``events``, through the stream's chain in batch."""
    from fraud.parse import kafka_records
    from fraud.pipeline import silver_from_records
    from fraud.score import score_silver

    silver = silver_from_records(kafka_records(spark, config, events), config).cache()
    gold = score_silver(silver, model, config)
    rows = [r.asDict() for r in gold.select("transaction_id", "domain", "actor_id", "predicted_class",
                                            "raised_by").collect()]
    return rows, silver.toArrow()


def rules_cost(rules, silver, batch_rows: int = 5000, repeats: int = 7) -> dict:
    """What the rules cost the alert path: ``RuleBook.hits`` over a ``batch_rows`` micro-batch of
    silver on the driver (as ``fraud.score.score_table`` runs it), median of ``repeats``."""
    import statistics

    batch = silver.slice(0, batch_rows)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        rules.hits(batch)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"rules": len(rules.rules), "batch_rows": batch.num_rows, "ms_per_batch": round(median * 1000, 2),
            "us_per_row": round(median * 1e6 / batch.num_rows, 2)}


def profile_sequences(events: list[dict]) -> list[dict]:
    """Ground truth of ordinary simulator traffic: one sequence per (run, actor)."""
    sequences: dict[tuple, dict] = {}
    for e in events:
        label = e["pattern"] if e["pattern"].startswith("fraud_") else "regular"
        s = sequences.setdefault((e["test_id"], e["actor_id"]), {"domain": e["domain"], "label": label,
                                                                  "group": e["pattern"], "transaction_ids": []})
        s["transaction_ids"].append(e["transaction_id"])
    return list(sequences.values())


def table(name: str, result: dict) -> str:
    lines = [f"\n{name}", f"{'domain/pattern':<52} {'seqs':>5} {'model':>6} {'rules':>6} {'both':>5} {'missed':>6}"]
    for group, c in result["by_group"].items():
        lines.append(f"{group:<52} {c['sequences']:>5} {c['model']:>6} {c['rules']:>6} {c['both']:>5} {c['missed']:>6}")
    for domain, f in result["by_domain"].items():
        lines.append(f"{domain}: recall {f['recall']}, precision {f['precision_all']} ({f['alerts_all']} alerts);"
                     f" model alone would give precision {f['precision_model']}, rules {f['precision_rules']}"
                     f" ({f['alerts_rules']} rule alerts)")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The README's table: per domain and fraud pattern, sequences caught by the model alone, the rules
    alone, both, or missed, on each held-out set (a pattern's variants summed, the weakest named);
    then per domain, sequence recall and alert precision of model and rules together."""
    def by_pattern(groups: dict) -> dict:
        out: dict[tuple, dict] = {}
        for key, c in groups.items():
            domain, group = key.split("/", 1)
            pattern, _, variant = group.partition("/")
            totals = out.setdefault((domain, pattern), {"sequences": 0, "model": 0, "rules": 0, "both": 0,
                                                        "missed": 0, "weakest": None})
            for k in ("sequences", "model", "rules", "both", "missed"):
                totals[k] += c[k]
            share = c["missed"] / c["sequences"] if c["sequences"] else 0
            if variant and share > 0 and (totals["weakest"] is None or share > totals["weakest"][1]):
                totals["weakest"] = (variant, share)
        return out

    def cell(c: dict | None) -> str:
        if not c:
            return ""
        text = f"{c['model']} / {c['rules']} / {c['both']} / **{c['missed']}** of {c['sequences']}"
        return text + (f" (most missed: {c['weakest'][0]}, {c['weakest'][1]:.0%})" if c.get("weakest") else "")

    profile = by_pattern(result["held_out_profile"]["by_group"])
    variants = by_pattern(result["held_out_variants"]["by_group"])
    lines = ["| domain | pattern | held-out profile: model / rules / both / **missed** | held-out variants: model / rules / both / **missed** |",
             "|---|---|---|---|"]
    for domain, pattern in sorted(profile.keys() | variants.keys()):
        lines.append(f"| {domain} | {pattern.removeprefix('fraud_').replace('_', ' ')} | "
                     f"{cell(profile.get((domain, pattern)))} | {cell(variants.get((domain, pattern)))} |")
    for domain in sorted(result["held_out_profile"]["by_domain"]):
        p, v = result["held_out_profile"]["by_domain"][domain], result["held_out_variants"]["by_domain"][domain]
        lines.append(f"| {domain} | recall / precision (alerts by model, by rules) | {p['recall']} / {p['precision_all']}"
                     f" ({p['precision_model']}, {p['precision_rules']}) | {v['recall']} / {v['precision_all']}"
                     f" ({v['precision_model']}, {v['precision_rules']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--events", type=int, default=20000, help="variant run's events (before sequences finish)")
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--markdown", action="store_true",
                        help="print the README's table from benchmarks/results/variants.json and stop")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "variants.json"
    if args.markdown:
        print(markdown(json.loads(out.read_text())))
        return
    os.environ["TQDM_DISABLE"] = "1"

    from fraud.config import load_config
    from fraud.model.evaluation import detection_by_source
    from fraud.registry import Registry
    from fraud.score import ModelHolder, rules_of
    from fraud.spark import build_session
    from fraud_simulator.variants import variant_events

    config = load_config(args.config)
    spark = build_session(config, app_name="variants-bench")
    model = ModelHolder(Registry.for_config(config), config.alerts.threshold).current()
    if model is None:
        sys.exit(f"no model registered in {config.table_path('models')}: run make demo (or jobs/train_model.py) first")
    alert_types = {r.name: r.alert_type for r in rules_of(config).rules}
    started = time.perf_counter()

    held_out, about = Registry.for_config(config).gate_events()
    held_out = [json.loads(line) for line in held_out]
    scored, _ = score(spark, config, model, held_out)
    profile = detection_by_source(scored, profile_sequences(held_out), alert_types)

    events, records = variant_events(config, args.seed, args.events)
    sequences = [{"domain": r.domain, "label": r.pattern if r.is_fraud else "regular",
                  "group": f"{r.pattern}/{r.variant}" if r.variant else r.pattern, "transaction_ids": r.transaction_ids}
                 for r in records]
    scored, silver = score(spark, config, model, events)
    variants = detection_by_source(scored, sequences, alert_types)
    cost = rules_cost(rules_of(config), silver)

    result = {"model_version": model.version, "alert_threshold": model.threshold,
              "rules": sorted(r.name + (" (shadow)" if r.shadow else "") for r in rules_of(config).rules),
              "held_out_profile": {"profile": about["profile"], "seed": about["seed"], "events": len(held_out),
                                   **profile},
              "held_out_variants": {"seed": args.seed, "events": len(events), **variants},
              "rules_cost": cost,
              "seconds": round(time.perf_counter() - started, 1),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"model {model.version}, threshold {model.threshold}")
    print(table(f"held-out profile ({about['profile']}, {len(held_out):,} events)", profile))
    print(table(f"held-out variants (seed {args.seed}, {len(events):,} events)", variants))
    print(f"\nrules: {cost['ms_per_batch']} ms per {cost['batch_rows']:,}-row batch on the driver"
          f" ({cost['us_per_row']} us per row, {cost['rules']} rules, median of 7)")
    print(f"\n{out}")
    spark.stop()


if __name__ == "__main__":
    main()
