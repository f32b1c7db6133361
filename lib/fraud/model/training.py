"""The training job's flow: silver snapshot, fit, evaluate, gate, register (and maybe promote).

``jobs/train_model.py`` calls ``run_training``; the registered version's metadata says what
it was trained on (Delta version and simulator runs), with which code and parameters.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud.model_classes import MODEL_CLASSES
from fraud.cli import UserError
from fraud.config import Config
from fraud.model.evaluation import evaluate, gate_failures
from fraud.model.forest import FEATURE_COLUMNS, fit_model, with_label
from fraud.model.versions import mirror_to_postgres
from fraud.registry import Registry


@dataclass
class TrainingResult:
    version: str | None
    metrics: dict
    failures: list[str]
    training_seconds: float
    model_size_bytes: int
    promoted: bool


def train_and_register(spark, config: Config, train_df: DataFrame, eval_df: DataFrame, training_data: dict,
                       promote: bool | None = None, progress=print) -> TrainingResult:
    """Fit on ``train_df``; evaluate on ``eval_df``, which also chooses the alert threshold; evaluate
    on out-of-profile traffic at that threshold; register if the gate passes, promote if asked (or if
    no version is current yet)."""
    registry = Registry.for_config(config)
    events, about = gate_events(config, registry)  # before the fit: a missing set fails in seconds, not after it
    model, _, training_seconds = fit_model(config, train_df, progress)
    progress(f"fitted {config.model.num_trees} trees in {training_seconds} s; evaluating on the held-out set")
    metrics = evaluate(model, with_label(eval_df), config)
    progress(f"alert threshold {metrics['alert_threshold']}; evaluating out of profile ({about['profile']}, "
             f"seed {about['seed']}, {len(events):,} events)")
    outside = evaluate(model, with_label(out_of_profile_silver(spark, config, events)), config,
                       threshold=metrics["alert_threshold"])
    metrics["out_of_profile"] = {
        "profile": about["profile"], "seed": about["seed"], "events": outside["events"],
        "macro_f1": outside["macro_f1"], "by_domain": outside["alerting"][f"{metrics['alert_threshold']:.2f}"]}
    failures = gate_failures(metrics, config)
    if failures:
        return TrainingResult(None, metrics, failures, training_seconds, 0, False)

    version = registry.next_version()
    from fraud.drift import reference
    from fraud.score import with_scores
    from fraud.severity import Calibration

    # What live traffic is compared with for drift (fraud.drift): the training rows' inputs, the
    # held-out rows' fraud scores.
    scored = with_scores(model.transform(eval_df), config, version, metrics["alert_threshold"],
                         Calibration.of(metrics))
    drift_reference = reference(train_df, scored)
    model.write().overwrite().save(registry.model_path(version))
    size = _size_bytes(registry.model_path(version))
    metadata = {
        "version": version, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metrics": metrics, "alert_threshold": metrics["alert_threshold"], "features": FEATURE_COLUMNS,
        # Fraud score -> fraud probability on the held-out set: severity's expected loss (fraud.severity).
        "calibration": metrics["calibration"],
        "classes": list(MODEL_CLASSES),
        "training_data": training_data, "code_revision": _code_revision(), "params": _params(config),
        "training_seconds": training_seconds, "model_size_bytes": size, "drift_reference": drift_reference,
        "trained_on": trained_on(spark),
    }
    registry.write_metadata(version, metadata)
    do_promote = promote if promote is not None else registry.current_version() is None
    # Who promotes: the job, asked to (--promote) or because no version was current yet.
    actor = None if not do_promote else "training job (--promote)" if promote else "training job (first model)"
    mirror_to_postgres(config, metadata, actor, lambda: registry.promote(version))
    return TrainingResult(version, metrics, [], training_seconds, size, do_promote)


def gate_events(config: Config, registry: Registry) -> tuple[list[str], dict]:
    """The registry's out-of-profile events, refused unless they are the traffic the config names."""
    events, about = registry.gate_events()
    gate = config.model.gate.out_of_profile
    if (about.get("profile"), about.get("seed")) != (gate.profile, gate.seed):
        raise UserError(f"the registry's out-of-profile events are {about.get('profile')!r} seed {about.get('seed')};"
                        f" model.gate.out_of_profile names {gate.profile!r} seed {gate.seed}: write them again with"
                        " `python -m fraud_simulator.history DIR --gate-only`")
    return events, about


def out_of_profile_silver(spark, config: Config, events: list[str]) -> DataFrame:
    """Silver rows of the gate's out-of-profile events (JSON lines from the registry: traffic of a
    profile no training run used), put through the stream's chain in batch."""
    from fraud.parse import kafka_records
    from fraud.pipeline import silver_from_records

    return silver_from_records(kafka_records(spark, config, events), config).cache()


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


def trained_on(spark) -> dict:
    """Where the forest was fitted: the Spark master and the executors it had (0 in local mode, where
    the driver runs the tasks itself)."""
    infos = spark.sparkContext._jsc.sc().statusTracker().getExecutorInfos()  # the driver's entry too
    return {"master": spark.sparkContext.master, "executors": len(infos) - 1}


def _code_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def silver_snapshot(spark, config: Config, test_ids: list[str] | None) -> tuple[DataFrame, dict]:
    """Labelled silver rows of the given simulator runs (None: all rows), pinned to the table's
    current Delta version."""
    from delta.tables import DeltaTable

    path = config.table_path("silver")
    if not DeltaTable.isDeltaTable(spark, path):
        raise UserError(f"no silver table at {path}: run history through the streaming job first")
    version = DeltaTable.forPath(spark, path).history(1).select("version").first()["version"]
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    if test_ids is not None:
        df = df.filter(F.col("test_id").isin(*test_ids))
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
          f"macro F1 {m['macro_f1']:.4f}, sequence recall {m['sequence_detection']['recall']} "
          f"at alert threshold {m['alert_threshold']}")
    print("[train] held-out per domain at that threshold: " + ", ".join(
        f"{d} recall {f['recall']} precision {f['precision']}"
        for d, f in m["alerting"][f"{m['alert_threshold']:.2f}"].items()))
    oop = m["out_of_profile"]
    print(f"[train] out of profile ({oop['profile']}, never trained on): " + ", ".join(
        f"{d} recall {f['recall']} precision {f['precision']}" for d, f in oop["by_domain"].items()))
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


# Held out of a retraining, by actor (an actor's sequence never straddles the split): 1 in this many.
RETRAIN_HOLDOUT_EVERY = 5


def retraining_set(spark, config: Config, days: int, until: datetime | None = None) -> tuple[DataFrame, dict]:
    """Silver of the ``days`` days before ``until`` (default now), pinned to its current Delta version,
    each row labelled by the analysts' latest verdict on it where there is one, else by the pattern
    its event recorded (rows without either count as regular: what is not reported is taken for
    legitimate)."""
    if days < 1:
        raise UserError(f"--days must be at least 1, got {days}")
    until = until or datetime.now(timezone.utc)
    since = until - timedelta(days=days)
    silver, meta = silver_snapshot(spark, config, test_ids=None)
    silver = silver.filter(F.col("event_date").between(since.date(), until.date())
                           & (F.col("event_time") >= F.lit(since)) & (F.col("event_time") < F.lit(until)))
    verdicts = verdict_labels(spark, config).cache()
    labelled = silver.join(F.broadcast(verdicts), "transaction_id", "left")
    return labelled, {**meta, "since": since.isoformat(), "until": until.isoformat(), "days": days,
                      "verdicts": verdicts.count()}


def verdict_labels(spark, config: Config) -> DataFrame:
    """(transaction_id, verdict): the label of each transaction an analyst gave a verdict on (fraud.labels),
    from PostgreSQL and from the alerts archived to the lake (fraud.maintenance); the latest wins."""
    from delta.tables import DeltaTable

    from fraud.db import connect, postgres_dsn
    from fraud.labels import analyst_labels
    from fraud.maintenance import ARCHIVE_TABLE

    with connect(postgres_dsn(config, "batch")) as conn:
        rows = [(r["transaction_id"], r["label"], r["status_at"]) for r in analyst_labels(conn)]
    verdicts = spark.createDataFrame(rows, "transaction_id string, verdict string, status_at timestamp")
    archive = config.table_path(ARCHIVE_TABLE)
    if DeltaTable.isDeltaTable(spark, archive):
        verdicts = verdicts.unionByName(
            spark.read.format("delta").load(archive)
            .filter(F.col("status").isin("confirmed_fraud", "false_positive"))
            .select(F.explode("transactions.transaction_id").alias("transaction_id"),
                    F.when(F.col("status") == "confirmed_fraud", F.col("alert_type")).otherwise("regular")
                    .alias("verdict"), "status_at"))
    return verdicts.groupBy("transaction_id").agg(F.max_by("verdict", "status_at").alias("verdict"))


def run_retraining(spark, config: Config, days: int, until: datetime | None = None) -> int:
    """The scheduled retraining: the last ``days`` of silver (before ``until``, default now) with the
    analysts' verdicts, fitted and evaluated on actors held out of it, the gate, registered as the
    challenger: never promoted (the stream scores it in shadow; ``python -m fraud.model compare``
    then ``promote``)."""
    labelled, meta = retraining_set(spark, config, days, until)
    held_out = (F.abs(F.xxhash64("actor_id")) % RETRAIN_HOLDOUT_EVERY) == 0
    train_df, eval_df = labelled.filter(~held_out).cache(), labelled.filter(held_out).cache()
    if eval_df.isEmpty() or train_df.isEmpty():
        raise UserError(f"too little silver in the last {days} days to retrain ({meta['table']})")
    meta["split"] = f"actors with xxhash64(actor_id) % {RETRAIN_HOLDOUT_EVERY} == 0 held out"
    result = train_and_register(spark, config, train_df, eval_df, {"retrain": meta}, promote=False,
                                progress=lambda msg: print(f"[retrain] {msg}", flush=True))
    if result.failures:
        print("[retrain] gate failed, model NOT registered: " + "; ".join(result.failures))
        return 1
    Registry.for_config(config).set_challenger(result.version)
    print(f"[retrain] registered {result.version} as the challenger ({meta['verdicts']} analyst verdicts,"
          f" silver since {meta['since']}); the stream scores it in shadow from its next batch:"
          " `python -m fraud.model compare` to see both, `promote` to make it current")
    return 0
