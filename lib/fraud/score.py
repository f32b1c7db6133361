"""Scoring a micro-batch in-process: silver rows -> gold rows (classes, probabilities, score, severity)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fraud.config import Config
from fraud.registry import Registry
from fraud.simulate.patterns import MODEL_CLASSES

log = logging.getLogger(__name__)

assert MODEL_CLASSES[0] == "regular", "fraud_score is 1 - P(regular), the first class"

GOLD_COLUMNS = [
    "transaction_id", "domain", "actor_id", "test_id", "event_time", "event_date", "amount", "kafka_timestamp",
    "predicted_class", "class_probabilities", "fraud_score", "severity", "is_alert", "model_version",
    "pattern", "is_fraud", "scored_at",
]


def severity(score: Column, config: Config) -> Column:
    """critical / high / medium by the configured floors, low below them."""
    expr = F.lit("low")
    for level, floor in reversed(list(config.alerts.severity.items())):
        expr = F.when(score >= floor, F.lit(level)).otherwise(expr)
    return expr


def with_scores(predictions_df: DataFrame, config: Config, model_version: str) -> DataFrame:
    """Turn a fitted pipeline's output (``probability``, ``predicted_class``) into gold columns."""
    probabilities = vector_to_array("probability")
    classes = F.array(*[F.lit(c) for c in MODEL_CLASSES])
    fraud_score = F.lit(1.0) - probabilities[0]
    return (
        predictions_df
        .withColumn("class_probabilities", F.map_from_arrays(classes, probabilities))
        .withColumn("fraud_score", fraud_score)
        .withColumn("severity", severity(fraud_score, config))
        .withColumn("is_alert", (F.col("predicted_class") != "regular") & (fraud_score >= config.alerts.threshold))
        .withColumn("model_version", F.lit(model_version))
    )


def score_silver(silver_df: DataFrame, model: PipelineModel, config: Config, model_version: str) -> DataFrame:
    """Gold rows for silver rows, scored with ``model`` (JVM only: no Python per row)."""
    return (
        with_scores(model.transform(silver_df), config, model_version)
        .withColumn("scored_at", F.current_timestamp())
        .select(*GOLD_COLUMNS)
    )


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: PipelineModel


class ModelHolder:
    """The current registered model, loaded once and swapped when ``current`` moves.

    ``current()`` is called once per micro-batch: it reads the small pointer file and
    loads a new version only when the pointer changed, so a promotion takes effect at
    the next batch without a restart.
    """

    def __init__(self, registry: Registry):
        self.registry = registry
        self._loaded: LoadedModel | None = None
        self._warned = False

    def current(self) -> LoadedModel | None:
        version = self.registry.current_version()
        if version is None:
            if self._loaded is None and not self._warned:
                log.warning("no model registered yet in %s: gold and alerts wait for one", self.registry.root_uri)
                self._warned = True
            return self._loaded
        if self._loaded is None or self._loaded.version != version:
            pipeline = PipelineModel.load(self.registry.entry(version).model_path)
            log.info("scoring with model %s", version)
            self._loaded = LoadedModel(version, pipeline)
        return self._loaded
