"""How good a fitted model is on held-out rows, and the promotion gate those metrics must pass.

Metrics are per event (confusion matrix, accuracy, weighted and macro F1, per-class
precision/recall/F1) and per fraud sequence (caught if any of its events raised an alert
of the right class).
"""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud.model_classes import MODEL_CLASSES
from fraud.config import Config
from fraud.model.forest import feature_importances
from fraud.score import with_scores
from fraud.severity import Calibration, fit


def evaluate(model: PipelineModel, labelled_df: DataFrame, config: Config, version: str = "candidate",
             threshold: float | None = None) -> dict:
    """Metrics of ``model`` on a labelled (held-out) frame at an alert threshold: ``threshold``, or the
    one ``choose_threshold`` picks on this frame (``alert_threshold``).

    Event-level metrics (accuracy, F1s, confusion matrix) are of the decisions the stream takes at
    that threshold: an event whose most likely class is a fraud class but whose fraud score is below
    the threshold raises nothing, so it counts as ``regular``. ``alerting`` holds, per threshold and
    domain, sequence recall and alert precision; ``sequence_detection`` the sequences caught."""
    scored = with_scores(model.transform(labelled_df), config, version, threshold=1.0).cache()  # alerts: below
    try:
        by_score = [(r["label"], r["predicted_class"], r["milli"], r["count"]) for r in scored.groupBy(
            "label", "predicted_class", F.floor(F.col("fraud_score") * 1000).alias("milli")).count().collect()]
        candidates = alert_candidates(scored)
    finally:
        scored.unpersist()
    alerting = alerting_by_threshold(candidates)
    chosen = threshold if threshold is not None else choose_threshold(alerting)[0]
    confusion: dict[tuple[str, str], int] = {}
    for label, predicted, milli, count in by_score:
        decided = predicted if predicted != "regular" and milli >= round(chosen * 1000) else "regular"
        confusion[(label, decided)] = confusion.get((label, decided), 0) + count
    metrics = classification_metrics(confusion)
    metrics["alert_threshold"] = chosen
    metrics["alerting"] = alerting
    metrics["sequence_detection"] = sequence_detection(candidates, chosen)
    metrics["feature_importances"] = feature_importances(model)
    metrics["calibration"] = calibration_of(by_score).as_metadata()
    return metrics


def calibration_of(by_score: list[tuple]) -> Calibration:
    """Fraud score -> probability of fraud on these rows (``fraud.severity.fit``), from the per-mille
    score bins: the share of fraud events in each."""
    bins: dict[int, list[int]] = {}
    for label, _, milli, count in by_score:
        counts = bins.setdefault(milli, [0, 0])
        counts[0] += count
        counts[1] += count if label != "regular" else 0
    return fit([(min(1.0, (milli + 0.5) / 1000), n, fraud) for milli, (n, fraud) in bins.items()])


# Thresholds the training job tries on held-out data (fraud score = 1 - P(regular)).
THRESHOLDS = [round(0.3 + 0.05 * i, 2) for i in range(14)]


def alert_candidates(scored_df: DataFrame) -> tuple[dict[tuple[str, str], int], list[tuple]]:
    """(fraud sequences per (domain, class), [(domain, sequence, truth, predicted class, max fraud score)])
    of a scored, labelled frame: every (actor, fraud class) the model predicted, with its best score.
    Small: one row per actor and class predicted, whatever the events."""
    fraud = {(r["domain"], r["label"]): r["n"] for r in scored_df.filter(F.col("label") != "regular")
             .groupBy("domain", "label").agg(F.countDistinct("test_id", "actor_id").alias("n")).collect()}
    rows = (scored_df.filter(F.col("predicted_class") != "regular")
            .groupBy("domain", "test_id", "actor_id", "label", "predicted_class")
            .agg(F.max("fraud_score").alias("score")).collect())
    return fraud, [(r["domain"], (r["test_id"], r["actor_id"]), r["label"], r["predicted_class"], r["score"])
                   for r in rows]


def sequence_detection(candidates, threshold: float) -> dict:
    """Fraud sequences caught (an alert of their own class at ``threshold``), per class and in all."""
    fraud, rows = candidates
    caught = {(r[1], r[2]) for r in rows if r[2] == r[3] and r[4] >= threshold}
    by_class = {}
    for (_, label), n in fraud.items():
        by_class[label] = by_class.get(label, 0) + n
    caught_by_class = {label: sum(1 for _, l in caught if l == label) for label in by_class}
    total = sum(by_class.values())
    return {"recall_by_class": {c: round(caught_by_class[c] / n, 4) for c, n in sorted(by_class.items())},
            "fraud_sequences": total, "caught": len(caught),
            "recall": round(len(caught) / total, 4) if total else None}


def alerting_by_threshold(candidates) -> dict[str, dict]:
    """Per threshold and domain: sequence recall (fraud sequences with an alert of their own class)
    and alert precision (alerts, one per actor and class, whose class is the actor's truth), the
    batch twins of ``fraud.detection``'s live figures."""
    fraud, rows = candidates
    by_domain_total: dict[str, int] = {}
    for (domain, _), n in fraud.items():
        by_domain_total[domain] = by_domain_total.get(domain, 0) + n
    table = {}
    for threshold in THRESHOLDS:
        by_domain = {}
        for domain in sorted(by_domain_total.keys() | {r[0] for r in rows}):
            alerts = [r for r in rows if r[0] == domain and r[4] >= threshold]
            caught = {r[1] for r in alerts if r[2] == r[3]}
            correct = sum(r[2] == r[3] for r in alerts)
            total = by_domain_total.get(domain, 0)
            by_domain[domain] = {
                "fraud_sequences": total, "caught": len(caught),
                "recall": round(len(caught) / total, 4) if total else None,
                "alerts": len(alerts), "precision": round(correct / len(alerts), 4) if alerts else None}
        table[f"{threshold:.2f}"] = by_domain
    return table


def choose_threshold(alerting: dict[str, dict]) -> tuple[float, dict]:
    """The threshold whose worst domain is best: max over thresholds of the smallest per-domain F1 of
    sequence recall and alert precision (ties: the higher threshold, fewer alerts to review)."""
    def worst_f1(by_domain: dict) -> float:
        scores = []
        for figures in by_domain.values():
            r, p = figures["recall"] or 0.0, figures["precision"] or 0.0
            scores.append(2 * r * p / (r + p) if r + p else 0.0)
        return min(scores) if scores else 0.0
    best = max(alerting, key=lambda t: (worst_f1(alerting[t]), float(t)))
    return float(best), alerting[best]


def classification_metrics(confusion: dict[tuple[str, str], int]) -> dict:
    """Accuracy, weighted and macro F1, per-class precision/recall/F1 from (truth, predicted) -> count."""
    classes = list(MODEL_CLASSES)
    total = sum(confusion.values())
    per_class = {}
    for c in classes:
        tp = confusion.get((c, c), 0)
        predicted = sum(v for (_, p), v in confusion.items() if p == c)
        support = sum(v for (t, _), v in confusion.items() if t == c)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                        "support": support}
    present = [c for c in classes if per_class[c]["support"]]
    return {
        "events": total,
        "accuracy": round(sum(confusion.get((c, c), 0) for c in classes) / total, 4) if total else 0.0,
        "weighted_f1": round(sum(per_class[c]["f1"] * per_class[c]["support"] for c in present) / total, 4)
        if total else 0.0,
        "macro_f1": round(sum(per_class[c]["f1"] for c in present) / len(present), 4) if present else 0.0,
        "per_class": per_class,
        "per_class_f1": {c: per_class[c]["f1"] for c in classes},
        "confusion_matrix": {"labels": classes,
                             "counts": [[confusion.get((t, p), 0) for p in classes] for t in classes]},
    }


def gate_failures(metrics: dict, config: Config) -> list[str]:
    """Which gate floors the metrics miss (empty: the model may be registered)."""
    gate = config.model.gate
    failures = [
        f"{name} {metrics[name]:.4f} < {floor}"
        for name, floor in (("accuracy", gate.min_accuracy), ("weighted_f1", gate.min_weighted_f1),
                            ("macro_f1", gate.min_macro_f1))
        if metrics[name] < floor
    ]
    failures += [f"f1[{c}] {f1:.4f} < {gate.min_class_f1}" for c, f1 in metrics["per_class_f1"].items()
                 if f1 < gate.min_class_f1]
    if "alert_threshold" in metrics and "alerting" in metrics:
        held_out = metrics["alerting"][f"{metrics['alert_threshold']:.2f}"]
        failures += _domain_failures("held-out", held_out, gate.min_sequence_recall, gate.min_alert_precision)
    oop = metrics.get("out_of_profile")
    if oop:
        floors = gate.out_of_profile
        failures += _domain_failures("out-of-profile", oop["by_domain"], floors.min_recall, floors.min_precision)
    return failures


def _domain_failures(where: str, by_domain: dict, min_recall: float, min_precision: float) -> list[str]:
    return [f"{where} {name}[{domain}] {figures[name]} < {floor}"
            for domain, figures in by_domain.items()
            for name, floor in (("recall", min_recall), ("precision", min_precision))
            if (figures[name] or 0.0) < floor]


def detection_by_source(scored: list[dict], sequences: list[dict], alert_types: dict[str, str]) -> dict:
    """Model and typology rules together on labelled traffic: per fraud sequence, whether the model,
    the rules, both or neither raised an alert of its type; per domain, sequence recall and alert
    precision of all alerts and of each source's.

    ``scored``: gold rows (``transaction_id``, ``domain``, ``actor_id``, ``predicted_class``,
    ``raised_by``); ``sequences``: ``{"domain", "label", "group", "transaction_ids"}`` with ``label``
    the sequence's model class (``regular`` for regular traffic) and ``group`` what to report it
    under (pattern or variant); ``alert_types``: rule name -> the class its alerts have. An alert is
    one actor's alerts of one type, as the stream's episodes are; it is right when that type is the
    truth of a transaction it covers."""
    truth = {t: s["label"] for s in sequences for t in s["transaction_ids"]}
    raised: dict[str, tuple[str, set]] = {}  # transaction -> (its alert's type, the sources that raised that type)
    alerts: dict[tuple, dict] = {}  # (domain, actor, type) -> {"sources": set, "right": bool}
    for row in scored:
        if not row["raised_by"]:
            continue
        # As the stream types an alert (fraud.micro_batch.alert_rows_of): the model's class when the model
        # raised it, else the first rule's type; a rule counts as a source of it when its type is that one.
        rules = [alert_types[r.removeprefix("rule:")] for r in row["raised_by"] if r != "model"]
        model = "model" in row["raised_by"]
        alert_type = row["predicted_class"] if model else rules[0]
        sources = ({"model"} if model else set()) | ({"rules"} if alert_type in rules else set())
        raised[row["transaction_id"]] = (alert_type, sources)
        alert = alerts.setdefault((row["domain"], row["actor_id"], alert_type), {"sources": set(), "right": False})
        alert["sources"] |= sources
        alert["right"] |= truth.get(row["transaction_id"]) == alert_type
    by_group: dict[tuple, dict] = {}
    for s in sequences:
        if s["label"] == "regular":
            continue
        found = [raised[t] for t in s["transaction_ids"] if t in raised]
        by = {kind: any(t == s["label"] and kind in sources for t, sources in found) for kind in ("model", "rules")}
        outcome = "both" if by["model"] and by["rules"] else "model" if by["model"] else "rules" if by["rules"] else "missed"
        counts = by_group.setdefault((s["domain"], s["group"]), {"sequences": 0, "model": 0, "rules": 0, "both": 0,
                                                                  "missed": 0})
        counts["sequences"] += 1
        counts[outcome] += 1
    domains = sorted({d for d, _ in by_group} | {d for d, _, _ in alerts})
    by_domain = {}
    for domain in domains:
        groups = [c for (d, _), c in by_group.items() if d == domain]
        total = sum(c["sequences"] for c in groups)
        mine = [a for (d, _, _), a in alerts.items() if d == domain]
        figures = {"sequences": total,
                   "recall": round(sum(c["sequences"] - c["missed"] for c in groups) / total, 4) if total else None}
        for name, chosen in (("all", mine), ("model", [a for a in mine if "model" in a["sources"]]),
                             ("rules", [a for a in mine if "rules" in a["sources"]])):
            figures[f"alerts_{name}"] = len(chosen)
            figures[f"precision_{name}"] = round(sum(a["right"] for a in chosen) / len(chosen), 4) if chosen else None
        by_domain[domain] = figures
    return {"by_group": {f"{d}/{g}": c for (d, g), c in sorted(by_group.items())}, "by_domain": by_domain}
