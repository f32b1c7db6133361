"""How good a fitted model is on held-out rows, and the promotion gate those metrics must pass.

Metrics are per event (confusion matrix, accuracy, weighted and macro F1, per-class
precision/recall/F1) and per fraud sequence (caught if any of its events raised an alert
of the right class).
"""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud.classes import MODEL_CLASSES
from fraud.config import Config
from fraud.model.forest import feature_importances
from fraud.score import with_scores


def evaluate(model: PipelineModel, labelled_df: DataFrame, config: Config, version: str = "candidate") -> dict:
    """Event-level and sequence-level metrics of ``model`` on a labelled (held-out) frame."""
    scored = with_scores(model.transform(labelled_df), config, version).cache()
    try:
        confusion = {(r["label"], r["predicted_class"]): r["count"]
                     for r in scored.groupBy("label", "predicted_class").count().collect()}
        sequences = (
            scored.filter(F.col("label") != "regular")
            .groupBy("test_id", "actor_id", "label")
            .agg(F.max((F.col("is_alert") & (F.col("predicted_class") == F.col("label"))).cast("int")).alias("caught"))
            .groupBy("label").agg(F.count("*").alias("n"), F.sum("caught").alias("caught"))
            .collect()
        )
    finally:
        scored.unpersist()
    metrics = classification_metrics(confusion)
    metrics["sequence_detection"] = {
        "recall_by_class": {r["label"]: round(r["caught"] / r["n"], 4) for r in sorted(sequences, key=lambda r: r["label"])},
        "fraud_sequences": int(sum(r["n"] for r in sequences)),
        "caught": int(sum(r["caught"] for r in sequences)),
    }
    caught, total = metrics["sequence_detection"]["caught"], metrics["sequence_detection"]["fraud_sequences"]
    metrics["sequence_detection"]["recall"] = round(caught / total, 4) if total else None
    metrics["feature_importances"] = feature_importances(model)
    return metrics


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
    return failures
