"""The pipeline mirrored on the driver (fraud.driver_scorer, fraud.score.score_table): bit for bit what MLlib
computes, on a small forest fitted here, and refused when a model is not the pipeline it mirrors."""

from dataclasses import replace

import numpy as np
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import functions as F

from fraud.model_classes import MODEL_CLASSES
from fraud.schemas import CATEGORICAL_FEATURES, NUMERIC_FEATURES, SHARED_FEATURES
from fraud.model.forest import build_pipeline, with_label
from fraud.score import LoadedModel, score_silver, score_table
from fraud.driver_scorer import ModelMismatch, DriverScorer


def silver_rows(n: int, seed: int) -> list[dict]:
    """Rows with every model input: random values on a few levels (so splits fall on them exactly),
    absent ones, a category the index never saw, every class."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {c: None if rng.random() < 0.1 else float(rng.integers(0, 8)) / 4 for c in NUMERIC_FEATURES}
        row["domain"] = [None, "gaming", "fintech", "ecommerce", "crypto" if seed else "gaming"][rng.integers(0, 5)]
        row.update(transaction_id=f"t{i}", actor_id=f"a{i % 7}", test_id="trees", pattern=(
            MODEL_CLASSES[i % len(MODEL_CLASSES)] if i % len(MODEL_CLASSES) else "regular_purchase"))
        rows.append(row)
    return rows


SCHEMA = ", ".join([f"{c} double" for c in NUMERIC_FEATURES] + [f"{c} string" for c in CATEGORICAL_FEATURES]
                   + ["transaction_id string", "actor_id string", "test_id string", "pattern string"])


@pytest.fixture(scope="module")
def fitted(spark, config, tmp_path_factory):
    """A 7-tree forest fitted on random rows, saved and loaded back as the stream loads a model."""
    small = replace(config, model=replace(config.model, num_trees=7, max_depth=6, class_weight_power=0))
    train_df = with_label(spark.createDataFrame(silver_rows(400, seed=0), SCHEMA))
    path = str(tmp_path_factory.mktemp("trees") / "model")
    build_pipeline(small).fit(train_df).save(path)
    return PipelineModel.load(path), path


def test_the_mirror_gives_mllibs_probabilities_bit_for_bit(spark, fitted):
    pipeline, path = fitted
    score_df = spark.createDataFrame(silver_rows(300, seed=1), SCHEMA)  # unseen category "crypto" included
    expected = {r["transaction_id"]: (r["probability"].toArray(), r["predicted_class"])
                for r in pipeline.transform(score_df).collect()}
    silver = score_df.toArrow()
    probabilities = DriverScorer.load(path).probabilities(silver)
    ids = silver.column("transaction_id").to_pylist()
    assert np.array_equal(probabilities, np.array([expected[t][0] for t in ids]))  # exactly, not approximately
    assert [MODEL_CLASSES[k] for k in probabilities.argmax(axis=1)] == [expected[t][1] for t in ids]
    assert len({expected[t][1] for t in ids}) > 1, "a forest that predicts one class would prove little"


def test_score_table_gives_score_silvers_gold_rows(spark, config, fitted):
    """The stream's driver-side scoring and the batch side's Spark scoring: the same gold rows, every column."""
    _, path = fitted  # the model as the stream loads it: its PipelineModel loaded only when score_silver needs it
    model = LoadedModel("v-trees", path, threshold=0.2, scorer=DriverScorer.load(path))
    silver_df = (spark.createDataFrame(silver_rows(300, seed=2), SCHEMA)
                 .select("*", F.lit(None).cast("timestamp").alias("event_time"),
                         F.lit(None).cast("date").alias("event_date"), F.col("f_log_amount").alias("amount"),
                         F.lit("USD").alias("currency"), F.lit(None).cast("timestamp").alias("kafka_timestamp"),
                         F.array().cast("array<string>").alias("quality_flags"),
                         F.lit(False).alias("is_fraud"),
                         # What the typology rules read beyond the features: a high-risk destination
                         # (fraud.rules' catalogue) alerts on the fintech rows from $10,000.
                         (F.col("f_log_amount") * 8000).alias("amount_usd"), F.lit("IR").alias("country_to"),
                         *[F.lit(1.0).alias(c) for c in SHARED_FEATURES]))
    spark_rows = [r.asDict() for r in score_silver(silver_df, model, config).collect()]
    driver_rows = score_table(silver_df.toArrow(), model, config).to_pylist()
    for row in driver_rows:
        row["class_probabilities"] = dict(row["class_probabilities"])
    assert driver_rows == spark_rows
    assert len({(r["severity"], r["is_alert"]) for r in driver_rows}) > 1, "one outcome would prove little"
    assert {tuple(r["raised_by"]) for r in driver_rows} >= {(), ("rule:high_risk_jurisdiction",)}, "rules too"


def test_a_model_that_is_not_the_mirrored_pipeline_is_refused(fitted, tmp_path):
    pipeline, _ = fitted
    changed = SQLTransformer(statement=pipeline.stages[0].getStatement().replace("-1.0", "0.0"))
    for name, stages, what in [("fills", [changed, *pipeline.stages[1:]], "input fills"),
                               ("short", pipeline.stages[:-1], "stages")]:
        PipelineModel(stages).save(str(tmp_path / name))
        with pytest.raises(ModelMismatch, match=what):
            DriverScorer.load(str(tmp_path / name))
    (tmp_path / "empty" / "metadata").mkdir(parents=True)  # a folder that is no saved model
    with pytest.raises(ModelMismatch, match="no saved metadata"):
        DriverScorer.load(str(tmp_path / "empty"))


def test_contributions_add_up_to_each_rows_probability_and_come_from_its_path(spark, fitted):
    """Tree-path attribution is exact: bias + contributions = the probability MLlib gives the row's
    class; an input no tree splits on contributes nothing; the top features are the largest
    positive ones, with the row's silver values."""
    _, path = fitted
    mirror = DriverScorer.load(path)
    silver = spark.createDataFrame(silver_rows(200, seed=2), SCHEMA).toArrow()
    probabilities = mirror.probabilities(silver)
    classes = probabilities.argmax(axis=1)
    bias, contributions = mirror.forest.contributions(mirror.inputs(silver), classes)
    assert np.allclose(bias + contributions.sum(axis=1), probabilities[np.arange(200), classes], rtol=0, atol=1e-12)
    inputs, forest = mirror.inputs(silver), mirror.forest
    for i in range(20):  # only the inputs split on along the row's paths get any credit
        on_path = set()
        for feature, threshold, left, right in zip(forest.feature, forest.threshold, forest.left, forest.right):
            node = 0
            while left[node] >= 0:
                on_path.add(int(feature[node]))
                node = left[node] if inputs[i, feature[node]] <= threshold[node] else right[node]
        assert set(np.flatnonzero(contributions[i])) <= on_path

    top = mirror.top_features(silver, classes, 3)
    names = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    for i, features in enumerate(top):
        positive = sorted((c for c in contributions[i] if c > 0), reverse=True)[:3]
        assert [f["contribution"] for f in features] == [round(float(c), 4) for c in positive]
        for f in features:
            assert f["value"] == silver.column(f["feature"])[i].as_py()
            assert contributions[i, names.index(f["feature"])] == pytest.approx(f["contribution"], abs=5e-5)
    assert sum(len(t) for t in top) > 200, "most rows should have several reasons"
