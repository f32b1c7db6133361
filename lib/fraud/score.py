"""Scoring a micro-batch in-process: silver rows -> gold rows (classes, probabilities, score, severity)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fraud.model_classes import MODEL_CLASSES
from fraud.config import Config
from fraud.registry import Registry
from fraud.schemas import GOLD_COLUMNS
from fraud.rules import RuleBook, rule_book
from fraud.severity import Calibration, Ladder, ladder, levels_of
from fraud.severity import column as severity_column
from fraud.driver_scorer import DriverScorer

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel

log = logging.getLogger(__name__)

assert MODEL_CLASSES[0] == "regular", "fraud_score is 1 - P(regular), the first class"


# What a model registered before thresholds were chosen in training alerts at (the former hand-set value).
DEFAULT_ALERT_THRESHOLD = 0.7


def rules_of(config: Config) -> RuleBook:
    return rule_book(config.rules.file, config.rules.shadow, config.rules.disabled)


def with_scores(predictions_df: DataFrame, config: Config, model_version: str, threshold: float,
                calibration: Calibration = Calibration()) -> DataFrame:
    """Turn a fitted pipeline's output (``probability``, ``predicted_class``) into gold columns: a fraud
    class at or above ``threshold`` is the model's alert, a matching typology rule not in shadow is a
    rule's (``fraud.rules``); severity from the expected loss (``fraud.severity``)."""
    columns = _score_columns(threshold, ladder(config.alerts.severity), calibration, rules_of(config))
    return predictions_df.select("*", *columns, F.lit(model_version).alias("model_version"))


@lru_cache(maxsize=8)
def _score_columns(threshold: float, steps: Ladder, calibration: Calibration, rules: RuleBook) -> tuple[Column, ...]:
    """Built once per process (each micro-batch would otherwise pay the Py4J calls)."""
    from pyspark.ml.functions import vector_to_array  # here: the stream never imports pyspark.ml

    probabilities = vector_to_array("probability")
    classes = F.array(*[F.lit(c) for c in MODEL_CLASSES])
    fraud_score = F.lit(1.0) - probabilities[0]
    expected_loss = calibration.column(fraud_score) * F.col("amount_usd")
    model_alert = (F.col("predicted_class") != "regular") & (fraud_score >= threshold)
    raised_by = rules.raised_by_column(model_alert, rules.hits_column())
    return (
        F.map_from_arrays(classes, probabilities).alias("class_probabilities"),
        fraud_score.alias("fraud_score"),
        calibration.column(fraud_score).alias("fraud_probability"),
        expected_loss.alias("expected_loss_usd"),
        severity_column(expected_loss, steps).alias("severity"),
        rules.hits_column().alias("rule_hits"),
        raised_by.alias("raised_by"),
        (F.size(raised_by) > 0).alias("is_alert"),
    )


def score_silver(silver_df: DataFrame, model: "LoadedModel", config: Config) -> DataFrame:
    """Gold rows for silver rows, scored in-process with ``model`` (JVM only: no Python per row).

    Without ``scored_at``: a timestamp literal would change the generated code of the whole
    scoring stage every batch and force a recompile; the writer adds it (``with_scored_at``).
    """
    return with_scores(model.transform(silver_df), config, model.version, model.threshold,
                       model.calibration).select(*_GOLD_SCORED)


_GOLD_SCORED = [c for c in GOLD_COLUMNS if c != "scored_at"]


def score_table(silver: pa.Table, model: "LoadedModel", config: Config) -> pa.Table:
    """``score_silver`` for a micro-batch the driver holds as Arrow: the same gold columns, bit for bit
    (``tests/test_driver_scorer.py``), from the pipeline on the driver (``fraud.driver_scorer``): no Spark job."""
    p = model.scorer.probabilities(silver)
    n, k = p.shape
    fraud_score = 1.0 - p[:, 0]
    predicted = np.array(MODEL_CLASSES, dtype=object)[p.argmax(axis=1)]  # the first of equal maxima, as MLlib
    probability = model.calibration.probability(fraud_score)
    expected_loss = pc.multiply(pa.array(probability, pa.float64()), silver.column("amount_usd"))  # null stays null
    rules = rules_of(config)
    hits = rules.hits(silver)
    model_alert = (predicted != "regular") & (fraud_score >= model.threshold)
    raised_by = [rules.raised_by(bool(m), h) for m, h in zip(model_alert, hits)]
    scores = {
        "predicted_class": pa.array(predicted, pa.string()),
        "class_probabilities": pa.MapArray.from_arrays(
            pa.array(np.arange(0, (n + 1) * k, k), pa.int32()), pa.array(list(MODEL_CLASSES) * n, pa.string()),
            pa.array(p.ravel(), pa.float64())),
        "fraud_score": pa.array(fraud_score, pa.float64()),
        "fraud_probability": pa.array(probability, pa.float64()),
        "expected_loss_usd": expected_loss,
        "severity": pa.array(levels_of(expected_loss.to_numpy(zero_copy_only=False), ladder(config.alerts.severity)),
                             pa.string()),
        "rule_hits": pa.array(hits, pa.list_(pa.string())),
        "raised_by": pa.array(raised_by, pa.list_(pa.string())),
        "is_alert": pa.array([bool(r) for r in raised_by], pa.bool_()),
        "model_version": pa.array([model.version] * n, pa.string()),
    }
    return pa.table({c: scores[c] if c in scores else silver.column(c) for c in _GOLD_SCORED})


def with_scored_at(gold_df: DataFrame, *keep: str) -> DataFrame:
    """Gold's columns, ``scored_at`` now, then the columns ``keep`` names."""
    return gold_df.select(*[F.current_timestamp().alias(c) if c == "scored_at" else c for c in GOLD_COLUMNS], *keep)


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: PipelineModel | str  # fitted, or the folder it is saved in: loaded when ``transform`` first needs it
    threshold: float = DEFAULT_ALERT_THRESHOLD  # the fraud score from which a fraud class alerts
    scorer: DriverScorer | None = None  # the pipeline on the driver (``score_table``); the stream's models have it
    calibration: Calibration = Calibration()  # fraud score -> fraud probability (fraud.severity)

    @cached_property
    def fitted(self) -> PipelineModel:
        if not isinstance(self.pipeline, str):
            return self.pipeline
        from pyspark.ml import PipelineModel

        return PipelineModel.load(self.pipeline)

    def transform(self, df: DataFrame) -> DataFrame:
        # PySpark's own call: calling the fitted pipeline's JVM object directly (``_to_java()``) measured
        # no faster on Spark 4.0.2 or 4.1.1 (benchmarks/internals.py).
        return self.fitted.transform(df)


class ModelHolder:
    """The current registered model, loaded once and swapped when ``current`` moves.

    ``current()`` is called once per micro-batch: it reads the small pointer file and
    loads a new version only when the pointer changed, so a promotion takes effect at
    the next batch without a restart.
    """

    def __init__(self, registry: Registry, threshold: float | None = None):
        self.registry = registry
        self.threshold = threshold  # alerts.threshold: overrides the one each model was registered with
        self._loaded: LoadedModel | None = None
        self._warned = False
        self._lock = threading.Lock()
        self._challenger: LoadedModel | None = None
        self._challenger_lock = threading.Lock()  # apart: a challenger loading never holds up ``current``

    def load_in_background(self) -> None:
        """Load the current model (and the challenger) in a thread of its own, beside the query's
        start-up; ``current`` waits for it. The stream reads only the driver scorer's files
        (``DriverScorer.load``), never ``pyspark.ml``."""
        def load():
            try:
                self.current()
                self.challenger()
            except Exception:  # the first batch loads it again and fails there if it must
                log.warning("could not load the models ahead of the first batch", exc_info=True)

        threading.Thread(target=load, name="model-load", daemon=True).start()

    def current(self) -> LoadedModel | None:
        with self._lock:
            return self._current()

    def challenger(self) -> LoadedModel | None:
        """The challenger to score in shadow (``fraud.shadow``), or None. Called after the batch's
        alerts are committed: loading a new one (seconds, once per ``python -m fraud.model
        challenger``) delays the next batch, never this batch's detection."""
        version = self.registry.challenger_version()
        with self._challenger_lock:
            if version is None:
                self._challenger = None
            elif self._challenger is None or self._challenger.version != version:
                self._challenger = self._load(version, "shadow-scoring with challenger")
            return self._challenger

    def version(self, version: str) -> LoadedModel:
        """A given registered version (the lake writer re-scores a batch with the model that scored it)."""
        with self._lock:
            if self._loaded is not None and self._loaded.version == version:
                return self._loaded
            return self._load(version)

    def _current(self) -> LoadedModel | None:
        version = self.registry.current_version()
        if version is None:
            if self._loaded is None and not self._warned:
                log.warning("no model registered yet in %s: gold and alerts wait for one", self.registry.root_uri)
                self._warned = True
            return self._loaded
        if self._loaded is None or self._loaded.version != version:
            self._loaded = self._load(version)
        return self._loaded

    def _load(self, version: str, role: str = "scoring with model") -> LoadedModel:
        """The version's driver scorer (a model the stream cannot score exactly fails here); its
        ``PipelineModel`` only when a batch user transforms with it."""
        entry = self.registry.entry(version)
        threshold = (self.threshold if self.threshold is not None
                     else entry.metadata.get("alert_threshold", DEFAULT_ALERT_THRESHOLD))
        scorer = DriverScorer.load(entry.model_path)
        log.info("%s %s, alerts from fraud score %.2f", role, version, threshold)
        return LoadedModel(version, entry.model_path, threshold, scorer, Calibration.of(entry.metadata))
