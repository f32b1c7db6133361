"""One micro-batch, top to bottom: ``AlertPath`` is the ``foreachBatch`` function.

In the order it happens (``AlertPath._alert_path``):

1. collect: the state operator's rows come to the driver as Arrow (``materialize``), each record's
   shared-attribute features merged into its row (``fraud.features.merge_shared``);
2. silver: the valid rows' silver columns (``fraud.pipeline.to_silver``, one Spark job);
3. score: gold on the driver (``fraud.score.score_table`` through ``fraud.driver_scorer``: the
   registered MLlib pipeline, bit for bit, without a Spark job);
4. explain: why each alerting row alerts (``fraud.driver_scorer``);
5. alerts: alerts and ``sink_progress`` committed to PostgreSQL (``fraud.alerts``);
6. stage: the rows written once, as Parquet, beside the checkpoint (``fraud.stage``);
7. quality results, the challenger's shadow scores, the batch's metrics;
8. hand-off: the batch goes to the lake writer (``fraud.lake_writer``) and ``foreachBatch`` returns.

With the checkpoint's offsets, the marked Delta appends and ``sink_progress``, that gives
exactly-once effects. No record stops it (``fraud.isolation``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
import time

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from fraud.alerts import AlertSink
from fraud.model_classes import MODEL_CLASSES
from fraud.config import Config
from fraud.counts import BatchCounts
from fraud.faults import crash_point
from fraud.features import KIND, merge_shared
from fraud.schemas import NUMERIC_FEATURES
from fraud.isolation import UNPROCESSABLE, culprits, is_transient, isolate
from fraud.lake_writer import LakeWriter, StagedBatch
from fraud.metrics import BatchMetrics
from fraud.pipeline import silver_and_gold
from fraud.quality.gate import QualityGateFailed
from fraud.quality.results import QualityResults
from fraud.rules import MODEL, RULE_PREFIX, RuleBook
from fraud.score import LoadedModel, ModelHolder, rules_of, score_table
from fraud.shadow import ShadowBatch, ShadowSink
from fraud.stage import Stage

log = logging.getLogger(__name__)


def materialize(batch_df: DataFrame) -> pa.Table:
    """The micro-batch computed once (the one job through the state operator) and brought to the
    driver as an Arrow table, which the stage and the scoring use as is; the Spark steps that follow
    (silver's features, the quality results, the lake appends) read a frame over those rows
    (``_BatchRows.frame``).

    That frame has no lineage back to the source: a frame that kept the batch's plan (Kafka source,
    parse, quality, state operator: thousands of expression nodes) would make every later step
    re-analyze and re-optimize it on the driver. It replaces ``localCheckpoint`` plus a collect, which
    needed a private call to release its blocks; for 300 rows and their silver columns the two took
    182 against 223 ms (median of 9, warm)."""
    return batch_df.toArrow()


class AlertPath:
    """``foreachBatch(batch_df, batch_id)``: the alert path of one micro-batch, then its hand-off to the lake.

    No record stops it (``fraud.isolation``): a record whose features are not finite, or whose value
    PostgreSQL or the stage refuses, is isolated into quarantine where it fails; a batch that fails
    all the same with an error that is not transient is tried ``stream.max_batch_attempts`` times in
    all, the last after the records behind the error are isolated (found by bisection with a probe
    that writes nothing). Transient errors propagate: the stream's outage handling replays the batch."""

    def __init__(self, config: Config, models: ModelHolder, alerts: AlertSink, metrics: BatchMetrics,
                 quality: QualityResults, lake: LakeWriter, shadow: ShadowSink):
        self.config = config
        self.models = models
        self.alerts = alerts
        self.shadow = shadow  # the challenger's predictions (fraud.shadow)
        self.metrics = metrics
        self.quality = quality  # each batch's data-quality results and the GX checkpoints (fraud.quality.results)
        self.lake = lake

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = datetime.now(timezone.utc)
        t = time.perf_counter()
        self.lake.wait_for(batch_id)
        rows = merge_shared(materialize(batch_df))  # the one job that runs the state operator
        state_ms = round((time.perf_counter() - t) * 1000, 1)
        if rows.num_rows == 0:  # no records: nothing to write anywhere
            return
        schema = StructType([f for f in batch_df.schema.fields if f.name != KIND])
        batch = _BatchRows(rows, schema, batch_df.sparkSession, self.config)
        limit = self.config.stream.max_batch_attempts
        failure: Exception | None = None
        for attempt in range(1, limit + 1):
            if failure is not None and attempt == limit:  # the last: isolate the records behind the error first
                found = culprits(range(batch.rows.num_rows), lambda subset: self._probe(batch.subset(subset), batch_id))
                if not found:
                    raise failure  # no record makes it fail: a defect or the environment, not a value
                log.error("batch %d: %d record(s) isolated as unprocessable after %d attempts: %s", batch_id,
                          len(found), attempt - 1, sorted(set(found.values())))
                batch.isolate(found)
            try:
                return self._alert_path(batch, batch_id, started, {"state": state_ms}, attempt)
            except Exception as err:
                if is_transient(err) or isinstance(err, QualityGateFailed) or attempt == limit:
                    raise
                log.warning("batch %d: attempt %d of %d failed (%s: %s)", batch_id, attempt, limit,
                            type(err).__name__, str(err).splitlines()[0][:300] if str(err) else "")
                failure = err

    def _alert_path(self, batch: "_BatchRows", batch_id: int, started: datetime, steps: dict[str, float],
                    attempt: int) -> None:
        def step(name: str, t0: float) -> float:
            now = time.perf_counter()
            steps[name] = round((now - t0) * 1000, 1)
            return now

        t = time.perf_counter()
        model = self.models.current()
        batch.score(model)
        t = step("score", t)
        alert_rows = batch.alert_rows(model)
        t = step("explain", t)
        result = self.alerts.write(self.lake.query_id, batch_id, alert_rows)
        crash_point("after_pg_commit", batch_id)
        batch.isolate(batch.indices_of(result.isolated))  # what PostgreSQL refused (a replay: the same)
        t = step("alerts", t)

        # Detection is done; what follows makes the batch safe to hand to the lake writer.
        stage = self.lake.stage
        try:
            stage.write(batch.rows, batch_id)
        except Exception as err:
            if is_transient(err):
                raise
            batch.isolate(culprits(range(batch.rows.num_rows), lambda subset: stage.probe(take(batch.rows, subset))))
            stage.write(batch.rows, batch_id)
        counts = BatchCounts.of(batch.rows)  # all the batch's metrics and quality figures
        t = step("stage", t)
        self.quality.after_batch(self.lake.query_id, batch_id, batch.frame, counts.by_outcome)
        stage.write_manifest(batch_id, batch.frame, model.version if model else None)
        t = step("quality", t)
        if batch.gold is not None:
            self.shadow.write_rule_hits(batch_id, batch.gold, rules_of(self.config))
            t = step("rule_hits", t)
        challenger = self.models.challenger() if batch.gold is not None else None
        if challenger is not None and challenger.version != model.version:
            self.shadow.write(self.lake.query_id, batch_id,
                              ShadowBatch(batch.gold, score_table(batch.silver, challenger, self.config)))
            t = step("shadow", t)

        self.metrics.record(
            query_id=self.lake.query_id, batch_id=batch_id, started_at=started, input_rows_by_topic=counts.by_topic,
            silver_rows=counts.valid, quarantine_rows=counts.total - counts.valid,
            quarantine_by_reason=counts.by_reason(), gold_rows=counts.valid if batch.gold is not None else 0,
            alert_rows=len(alert_rows), step_ms=steps, model_version=model.version if model else None,
            alerts_applied=result.applied, isolated_rows=counts.isolated, attempts=attempt,
        )
        log.info("batch %d: %d records, %d valid, %d alert rows, steps %s", batch_id, counts.total, counts.valid,
                 len(alert_rows), steps)
        crash_point("before_checkpoint_commit", batch_id)
        waited = self.lake.submit(StagedBatch(batch_id, batch.rows, batch.schema, counts, batch.silver, batch.gold))
        if waited >= 1:
            self.metrics.record_lake(self.lake.query_id, batch_id, {"lake_wait": round(waited, 1)})

    def _probe(self, subset: "_BatchRows", batch_id: int) -> None:
        """The alert path's record-bearing work on ``subset`` (some of the batch's rows), writing
        nothing: scoring and explaining, the alert write rolled back, the stage in memory."""
        model = self.models.current()
        subset.score(model)
        self.alerts.probe(self.lake.query_id, batch_id, subset.alert_rows(model))
        Stage.probe(subset.rows)


class _BatchRows:
    """One micro-batch's rows (the record frame as Arrow, as the state operator produced it) and what
    the alert path derives from them: the Spark frame over them, silver and gold. ``isolate`` reduces
    records to their raw Kafka columns with an ``unprocessable:`` reason (``fraud.isolation.isolate``)
    and derives the rest again, so silver and gold never hold them and quarantine does."""

    def __init__(self, rows: pa.Table, schema: StructType, spark: SparkSession, config: Config):
        self.rows = rows
        self.schema = schema
        self.spark = spark
        self.config = config
        self.model: LoadedModel | None = None
        self.silver: pa.Table | None = None
        self.gold: pa.Table | None = None
        self.frame = spark.createDataFrame(rows, schema=schema)

    def subset(self, indices) -> "_BatchRows":
        return _BatchRows(take(self.rows, indices), self.schema, self.spark, self.config)

    def score(self, model: LoadedModel | None) -> None:
        """Silver (one Spark job) and gold (on the driver); a row whose features are not all finite
        (the contract rules them out: a last guard) is isolated before the model sees it."""
        self.model = model
        self.silver, self.gold = silver_and_gold(self.frame, model, self.config)
        bad = non_finite_positions(self.silver)
        if bad:
            self.isolate(self.indices_of(bad))

    def alert_rows(self, model: LoadedModel | None) -> list[dict]:
        if self.gold is None:
            return []
        return alert_rows_of(self.gold, self.silver, model, self.config.alerts.top_features, rules_of(self.config))

    def indices_of(self, by_position: dict[tuple, str]) -> dict[int, str]:
        if not by_position:
            return {}
        positions = zip(*(self.rows.column(c).to_pylist() for c in ("topic", "partition", "offset")))
        return {i: by_position[p] for i, p in enumerate(positions) if p in by_position}

    def isolate(self, reasons: dict[int, str]) -> None:
        if not reasons:
            return
        self.rows = isolate(self.rows, reasons)
        self.frame = self.spark.createDataFrame(self.rows, schema=self.schema)
        if self.silver is not None:
            self.silver, self.gold = silver_and_gold(self.frame, self.model, self.config)


def take(rows: pa.Table, indices) -> pa.Table:
    """``rows`` at ``indices``, none included (pyarrow cannot type an empty list of indices)."""
    return rows.take(pa.array(list(indices), pa.int64()))


def non_finite_positions(silver: pa.Table) -> dict[tuple, str]:
    """Kafka positions of silver rows with a missing or non-finite model input, with the reason."""
    if silver.num_rows == 0:
        return {}
    features = np.column_stack([silver.column(c).to_numpy(zero_copy_only=False).astype(float)
                                for c in NUMERIC_FEATURES])
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size == 0:
        return {}
    positions = zip(*(silver.column(c).take(bad).to_pylist() for c in ("topic", "partition", "offset")))
    return {p: UNPROCESSABLE + "non_finite_features" for p in positions}


def alert_rows_of(gold: pa.Table, silver: pa.Table, model: LoadedModel, top_n: int, rules: RuleBook) -> list[dict]:
    """The gold rows that alert, as ``fraud.alerts`` takes them: probabilities as a dict, the alert's type
    (the model's class when the model raised it, else the first matching rule's), each raising rule's
    reason in words, and why the model scored it so (``top_features``, from the same silver rows: alert
    rows only, the cost stays off the others)."""
    is_alert = gold.column("is_alert")
    rows = gold.filter(is_alert).to_pylist()
    if not rows:
        return rows
    alerted = silver.filter(is_alert)
    for row, event in zip(rows, alerted.to_pylist()):
        raising = [rules.by_name(r.removeprefix(RULE_PREFIX)) for r in row["raised_by"] if r != MODEL]
        row["alert_type"] = row["predicted_class"] if MODEL in row["raised_by"] else raising[0].alert_type
        row["rule_reasons"] = [{"rule": rule.name, "reason": rule.reason(event), "source": rule.source}
                               for rule in raising]
        row["position"] = (event["topic"], event["partition"], event["offset"])  # what isolation names (fraud.alerts)
    classes = np.array([MODEL_CLASSES.index(r["alert_type"]) for r in rows])
    for row, top in zip(rows, model.scorer.top_features(alerted, classes, top_n)):
        row["class_probabilities"] = dict(row["class_probabilities"])
        row["top_features"] = top
    return rows
