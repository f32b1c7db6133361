"""The 10-class RandomForest: pipeline, training, evaluation, gate, registration.

Inputs are exactly the silver feature columns the stream computed (``fraud.features``);
ground truth (``pattern``) only makes the label and never enters the feature vector.

CLI: ``python -m fraud.model show|list|promote VERSION|rollback [--json]``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import RandomForestClassificationModel, RandomForestClassifier
from pyspark.ml.feature import IndexToString, SQLTransformer, StringIndexer, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import Config, load_config
from fraud.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from fraud.quality import gate_training_set
from fraud.registry import Registry
from fraud.score import with_scores
from fraud.simulate.patterns import FRAUD_CLASSES, MODEL_CLASSES

log = logging.getLogger(__name__)

FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES


def with_label(silver_df: DataFrame) -> DataFrame:
    """Training label from ground truth: the fraud pattern, or ``regular``; its index in MODEL_CLASSES."""
    label = F.when(F.col("pattern").startswith("fraud_"), F.col("pattern")).otherwise(F.lit("regular"))
    classes = F.array(*[F.lit(c) for c in MODEL_CLASSES])
    return (silver_df.withColumn("label", label)
            .withColumn("label_idx", (F.array_position(classes, label) - 1).cast("double")))


def with_class_weights(labelled_df: DataFrame, power: float) -> DataFrame:
    """Weight rows by (inverse class frequency) ** power: 1 balances classes fully, 0 not at all.

    Measured on held-out data: full balancing made regular hard negatives look like fraud
    (synthetic-identity precision 0.56), none under-detected friendly fraud (F1 0.91),
    the square root gave the best macro F1 (0.996).
    """
    counts = {r["label"]: r["count"] for r in labelled_df.groupBy("label").count().collect()}
    total, n = sum(counts.values()), len(counts)
    weights = F.create_map(*[x for c, k in counts.items() for x in (F.lit(c), F.lit((total / (n * k)) ** power))])
    return labelled_df.withColumn("weight", weights[F.col("label")])


def build_pipeline(config: Config) -> Pipeline:
    # Absent inputs (a fintech event has no payment method) become explicit values, in the pipeline,
    # so serving fills them exactly as training did.
    fills = [f"coalesce(CAST({c} AS DOUBLE), -1.0) AS m_{c}" for c in NUMERIC_FEATURES]
    fills += [f"coalesce({c}, 'none') AS m_{c}" for c in CATEGORICAL_FEATURES]
    prepare = SQLTransformer(statement=f"SELECT *, {', '.join(fills)} FROM __THIS__")
    index = StringIndexer(inputCols=[f"m_{c}" for c in CATEGORICAL_FEATURES],
                          outputCols=[f"i_{c}" for c in CATEGORICAL_FEATURES],
                          handleInvalid="keep", stringOrderType="alphabetAsc")
    # Category indices used as plain numbers, not as Spark "nominal" features and not one-hot.
    # Measured on held-out data: Spark orders a many-valued nominal feature of a multiclass label
    # by node impurity, which cannot separate pure categories (savings vs synthetic-identity wires,
    # F1 0.87 on one seed); one-hot slots diluted feature sampling (friendly fraud F1 0.79).
    as_numbers = SQLTransformer(statement="SELECT *, " + ", ".join(
        f"i_{c} + 0.0 AS n_{c}" for c in CATEGORICAL_FEATURES) + " FROM __THIS__")
    assemble = VectorAssembler(inputCols=[f"m_{c}" for c in NUMERIC_FEATURES] + [f"n_{c}" for c in CATEGORICAL_FEATURES],
                               outputCol="features")
    m = config.model
    forest = RandomForestClassifier(
        labelCol="label_idx", featuresCol="features", numTrees=m.num_trees, maxDepth=m.max_depth,
        maxBins=m.max_bins, minInstancesPerNode=m.min_instances_per_node, subsamplingRate=m.subsampling_rate,
        featureSubsetStrategy=m.feature_subset_strategy,
        seed=m.seed, **({"weightCol": "weight"} if m.class_weight_power else {}),
    )
    to_class = IndexToString(inputCol="prediction", outputCol="predicted_class", labels=list(MODEL_CLASSES))
    return Pipeline(stages=[prepare, index, as_numbers, assemble, forest, to_class])


# --- evaluation -------------------------------------------------------------------

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


def feature_importances(model: PipelineModel) -> dict[str, float]:
    """Forest importances per input column, largest first."""
    (forest,) = [stage for stage in model.stages if isinstance(stage, RandomForestClassificationModel)]
    pairs = zip(NUMERIC_FEATURES + CATEGORICAL_FEATURES, forest.featureImportances.toArray())
    return dict(sorted(((c, round(float(v), 5)) for c, v in pairs), key=lambda kv: -kv[1]))


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


# --- training + registration -------------------------------------------------------

@dataclass
class TrainingResult:
    version: str | None
    metrics: dict
    failures: list[str]
    training_seconds: float
    model_size_bytes: int
    promoted: bool


def check_training_set(labelled_df: DataFrame) -> dict[str, int]:
    """Every class present, no nulls in model inputs; raises UserError with what is wrong."""
    counts = {r["label"]: r["count"] for r in labelled_df.groupBy("label").count().collect()}
    missing = [c for c in MODEL_CLASSES if c not in counts]
    if missing:
        raise UserError(f"training set lacks classes: {', '.join(missing)} (simulate more history)")
    return counts


def fit_model(config: Config, train_df: DataFrame, progress=print) -> tuple[PipelineModel, dict[str, int], float]:
    """Label, check and weight ``train_df`` as configured and fit the pipeline: (model, rows per class, seconds).

    The training job and the model notebook both fit through here, so they train the same way."""
    train_labelled = with_label(train_df)
    gate_training_set(train_labelled, config, list(MODEL_CLASSES))  # data quality gate: raises with a report
    counts = check_training_set(train_labelled)
    progress(f"training set: {sum(counts.values()):,} events, {len(counts)} classes")
    if config.model.class_weight_power:
        train_labelled = with_class_weights(train_labelled, config.model.class_weight_power)
    started = time.monotonic()
    model = build_pipeline(config).fit(train_labelled)
    return model, counts, round(time.monotonic() - started, 1)


def train_and_register(spark, config: Config, train_df: DataFrame, eval_df: DataFrame, training_data: dict,
                       promote: bool | None = None, progress=print) -> TrainingResult:
    """Fit on ``train_df``, evaluate on ``eval_df``, register if the gate passes, promote if asked
    (or if no version is current yet)."""
    model, _, training_seconds = fit_model(config, train_df, progress)
    progress(f"fitted {config.model.num_trees} trees in {training_seconds} s; evaluating on the held-out set")
    metrics = evaluate(model, with_label(eval_df), config)
    failures = gate_failures(metrics, config)
    registry = Registry.for_config(config)
    if failures:
        return TrainingResult(None, metrics, failures, training_seconds, 0, False)

    version = registry.next_version()
    model.write().overwrite().save(registry.model_path(version))
    size = _size_bytes(registry.model_path(version))
    metadata = {
        "version": version, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metrics": metrics, "features": FEATURE_COLUMNS, "classes": list(MODEL_CLASSES),
        "training_data": training_data, "code_revision": _code_revision(), "params": _params(config),
        "training_seconds": training_seconds, "model_size_bytes": size,
    }
    registry.write_metadata(version, metadata)
    do_promote = promote if promote is not None else registry.current_version() is None
    if do_promote:
        registry.promote(version)
    _mirror_to_postgres(config, metadata, do_promote)
    return TrainingResult(version, metrics, [], training_seconds, size, do_promote)


def _params(config: Config) -> dict:
    m = config.model
    return {"num_trees": m.num_trees, "max_depth": m.max_depth, "max_bins": m.max_bins,
            "min_instances_per_node": m.min_instances_per_node, "subsampling_rate": m.subsampling_rate,
            "feature_subset_strategy": m.feature_subset_strategy,
            "seed": m.seed, "class_weight_power": m.class_weight_power}


def _size_bytes(uri: str) -> int:
    from pyarrow import fs

    filesystem, root = fs.FileSystem.from_uri(uri if "://" in uri else f"file://{uri}")
    infos = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
    return sum(i.size or 0 for i in infos if i.type == fs.FileType.File)


def _code_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _mirror_to_postgres(config: Config, metadata: dict, is_current: bool) -> None:
    """Metrics for the Dash model page; the registry stays the source of truth."""
    from psycopg.types.json import Jsonb

    from fraud.db import connect, postgres_dsn

    with connect(postgres_dsn(config)) as conn, conn.transaction():
        if is_current:
            conn.execute("UPDATE model_versions SET is_current = false WHERE is_current")
        conn.execute(
            "INSERT INTO model_versions (version, created_at, metrics, features, training_data, code_revision,"
            " is_current, promoted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
            " ON CONFLICT (version) DO UPDATE SET metrics = EXCLUDED.metrics",
            (metadata["version"], metadata["created_at"], Jsonb(metadata["metrics"]), Jsonb(metadata["features"]),
             Jsonb(metadata["training_data"]), metadata["code_revision"], is_current, is_current),
        )


def set_current_in_postgres(config: Config, version: str) -> None:
    from fraud.db import connect, postgres_dsn

    with connect(postgres_dsn(config)) as conn, conn.transaction():
        conn.execute("UPDATE model_versions SET is_current = (version = %s),"
                     " promoted_at = CASE WHEN version = %s THEN now() ELSE promoted_at END", (version, version))


def promote_version(config: Config, version: str) -> dict:
    """Move the registry's ``current`` pointer to ``version`` and mirror it to PostgreSQL."""
    pointer = Registry.for_config(config).promote(version)
    set_current_in_postgres(config, pointer["version"])
    return pointer


def rollback_version(config: Config) -> dict:
    """Point ``current`` back to the version promoted before it, in the registry and PostgreSQL."""
    pointer = Registry.for_config(config).rollback()
    set_current_in_postgres(config, pointer["version"])
    return pointer


def summary(entry) -> dict:
    """What ``show --json`` prints: the version and its headline metrics."""
    metrics = entry.metadata["metrics"]
    return {
        "version": entry.version,
        "created_at": entry.metadata["created_at"],
        "accuracy": metrics["accuracy"],
        "weighted_f1": metrics["weighted_f1"],
        "macro_f1": metrics["macro_f1"],
        "per_class_f1": metrics["per_class_f1"],
        "sequence_recall": metrics["sequence_detection"]["recall"],
        "training_data": entry.metadata["training_data"],
        "code_revision": entry.metadata["code_revision"],
        "model_size_bytes": entry.metadata["model_size_bytes"],
        "training_seconds": entry.metadata["training_seconds"],
        "path": entry.model_path,
    }


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud.model", description="Inspect and move the model registry.")
    parser.add_argument("command", choices=["show", "list", "promote", "rollback"])
    parser.add_argument("version", nargs="?", help="version to promote (e.g. v0002)")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    registry = Registry.for_config(config)

    if args.command == "show":
        entry = registry.current()
        if entry is None:
            raise UserError(f"no current model in {registry.root_uri}: train one with jobs/train_model.py")
        out = summary(entry)
    elif args.command == "list":
        current = registry.current_version()
        out = [{"version": v, "current": v == current,
                "macro_f1": registry.entry(v).metadata["metrics"]["macro_f1"]} for v in registry.versions()]
    elif args.command == "promote":
        if not args.version:
            raise UserError("promote needs a version, e.g. `python -m fraud.model promote v0002`")
        out = promote_version(config, args.version)
    else:
        out = rollback_version(config)
    print(json.dumps(out, indent=2) if args.json else out)
    return 0


if __name__ == "__main__":
    run(main)


def silver_snapshot(spark, config: Config, test_ids: list[str]) -> tuple[DataFrame, dict]:
    """Labelled silver rows of the given simulator runs, pinned to the table's current Delta version."""
    from delta.tables import DeltaTable

    path = config.table_path("silver")
    if not DeltaTable.isDeltaTable(spark, path):
        raise UserError(f"no silver table at {path}: run history through the streaming job first")
    version = DeltaTable.forPath(spark, path).history(1).select("version").first()["version"]
    df = (spark.read.format("delta").option("versionAsOf", version).load(path)
          .filter(F.col("test_id").isin(*test_ids)))
    return df, {"table": path, "delta_version": int(version), "test_ids": test_ids}


def run_training(spark, config: Config, train_ids: list[str], eval_ids: list[str], promote: bool | None) -> int:
    """The training job: snapshot, fit, evaluate, gate, register. Returns the exit status."""
    train_df, train_meta = silver_snapshot(spark, config, train_ids)
    eval_df, eval_meta = silver_snapshot(spark, config, eval_ids)
    train_df, eval_df = train_df.cache(), eval_df.cache()
    if eval_df.isEmpty():
        raise UserError(f"no silver rows for evaluation runs {', '.join(eval_ids)}")
    result = train_and_register(spark, config, train_df, eval_df,
                                {"train": train_meta, "evaluation": eval_meta}, promote=promote,
                                progress=lambda msg: print(f"[train] {msg}", flush=True))
    m = result.metrics
    print(f"[train] held-out: accuracy {m['accuracy']:.4f}, weighted F1 {m['weighted_f1']:.4f}, "
          f"macro F1 {m['macro_f1']:.4f}, sequence recall {m['sequence_detection']['recall']}")
    print("[train] per class (precision/recall/F1): " + ", ".join(
        f"{c} {v['precision']:.3f}/{v['recall']:.3f}/{v['f1']:.3f}" for c, v in m["per_class"].items()))
    labels, counts = m["confusion_matrix"]["labels"], m["confusion_matrix"]["counts"]
    for truth, row in zip(labels, counts):
        errors = {labels[j]: n for j, n in enumerate(row) if n and labels[j] != truth}
        if errors:
            print(f"[train] confused {truth} -> {errors}")
    if result.failures:
        print("[train] gate failed, model NOT registered: " + "; ".join(result.failures))
        return 1
    print(f"[train] registered {result.version} ({result.model_size_bytes / 1e6:.1f} MB, "
          f"{result.training_seconds} s to fit){', promoted to current' if result.promoted else ''}")
    return 0
