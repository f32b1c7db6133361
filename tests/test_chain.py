"""The record chain (fraud.pipeline), one step at a time, on a handful of literal Kafka records: each
step's exact output, derived from the events below (no stack, no trained model)."""

import datetime as dt
import json
import math
from dataclasses import replace

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.ml import PipelineModel, Transformer
from pyspark.ml.functions import array_to_vector
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from fraud.model_classes import MODEL_CLASSES
from fraud.config import QUARANTINE
from fraud.features import with_velocity_batch
from fraud.parse import PRODUCE_LAG, kafka_records
from fraud.pipeline import to_bronze, to_quarantine, to_silver, with_batch_id, with_reasons
from fraud.schemas import SILVER_COLUMNS
from fraud.score import LoadedModel, score_silver, with_scored_at, with_scores
from fraud.rules import rule_book
from fraud.schemas import GOLD_COLUMNS

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
WINDOW_S = 300
FLAGS_SCHEMA = "offset long, transaction_id string, reasons array<string>, quality_flags array<string>"
VELOCITY_COLUMNS = ["offset", "reasons", "v_count", "v_amount_sum", "v_amount_max", "v_amount_mean",
                    "v_secs_since_prev", "v_distinct_devices"]


def gaming(txn, seconds, amount, **fields):
    """A contract-valid, unflagged USD gaming event of actor g-1, ``seconds`` after T0."""
    return {"transaction_id": txn, "domain": "gaming", "test_id": "chain",
            "timestamp": (T0 + dt.timedelta(seconds=seconds)).isoformat(), "actor_id": "g-1",
            "sequence_position": 0, "pattern": "regular_purchase", "is_fraud": False, "player_id": "p-1",
            "game_id": "game-1", "item_type": "skin", "item_name": "Red", "amount": amount, "currency": "USD",
            "payment_method": "credit_card", "ip_address": "10.0.0.1", "device_id": "d-1",
            "session_length_sec": 60, **fields}


T2 = gaming("t2", 60, 30.0, device_id="d-2", payment_method="cash")  # an unlisted payment method: flagged
EVENTS = [
    gaming("t1", 0, 10.0),
    T2,
    gaming("u1", 70, 2500.0, actor_id="g-2"),  # above quality.max_amount_usd.gaming (2000): flagged
    gaming("t3", 90, 20.0),
    gaming("t4", 90 + WINDOW_S + 110, 5.0),  # t1..t3 are out of its window
    T2,  # the producer's retry
    gaming("neg", 80, -5.0),  # impossible amount: a contract reason
]
BROKEN = [b'{"transaction_id": ', None]  # cut-off JSON, a tombstone
BAD_OFFSET, TOMBSTONE_OFFSET = len(EVENTS), len(EVENTS) + 1


@pytest.fixture(scope="module")
def records_df(spark, config):
    return kafka_records(spark, config, EVENTS).union(
        kafka_records(spark, config, [EVENTS[0]] * len(BROKEN), values=BROKEN, first_offset=len(EVENTS)))


@pytest.fixture(scope="module")
def reasons_df(config, records_df):
    reasons_df = records_df.transform(with_reasons, config).cache()
    yield reasons_df
    reasons_df.unpersist()


@pytest.fixture(scope="module")
def batch_df(reasons_df):
    """What a ``foreachBatch`` call receives: reasons, then velocity features."""
    batch_df = reasons_df.transform(with_velocity_batch, WINDOW_S).cache()
    yield batch_df
    batch_df.unpersist()


def test_with_reasons_names_contract_failures_and_flags_valid_rows(spark, reasons_df):
    out_df = reasons_df.select("offset", "transaction_id", "reasons", "quality_flags").orderBy("offset")
    expected_df = spark.createDataFrame([
        (0, "t1", [], []),
        (1, "t2", [], ["payment_method_known"]),
        (2, "u1", [], ["amount_range_gaming"]),
        (3, "t3", [], []),
        (4, "t4", [], []),
        (5, "t2", [], ["payment_method_known"]),  # a duplicate only to the velocity step
        (6, "neg", ["out_of_range:amount"], []),  # not checked against expectations: no flags
        (BAD_OFFSET, None, ["malformed_json"], []),
        (TOMBSTONE_OFFSET, None, ["malformed_json"], []),
    ], FLAGS_SCHEMA)
    assert_df_equality(out_df, expected_df, ignore_nullable=True)


def test_with_reasons_quarantines_the_expectations_configured_so(spark, config, records_df):
    strict = replace(config, quality=replace(config.quality, actions={"payment_method_known": QUARANTINE}))
    out_df = (records_df.transform(with_reasons, strict)
              .filter(F.col("offset").isin(1, 2)).select("offset", "transaction_id", "reasons", "quality_flags"))
    expected_df = spark.createDataFrame([
        (1, "t2", ["expectation:payment_method_known"], []),
        (2, "u1", [], ["amount_range_gaming"]),  # other expectations still only flag
    ], FLAGS_SCHEMA)
    assert_df_equality(out_df, expected_df, ignore_nullable=True, ignore_row_order=True)


def test_velocity_counts_the_actors_window_and_marks_the_retry(spark, batch_df):
    out_df = batch_df.select(*VELOCITY_COLUMNS).orderBy("offset")
    no_features = (None,) * (len(VELOCITY_COLUMNS) - 2)
    expected_df = spark.createDataFrame([
        (0, [], 1.0, 10.0, 10.0, 10.0, -1.0, 1.0),
        (1, [], 2.0, 10.0 + 30.0, 30.0, 40.0 / 2, 60.0, 2.0),
        (2, [], 1.0, 2500.0, 2500.0, 2500.0, -1.0, 1.0),  # g-2: g-1's events are not its own
        (3, [], 3.0, 10.0 + 30.0 + 20.0, 30.0, 60.0 / 3, 90.0 - 60.0, 2.0),  # "neg" (80 s) is not counted
        (4, [], 1.0, 5.0, 5.0, 5.0, -1.0, 1.0),  # nothing left in its window: no previous event
        (5, ["duplicate"], *no_features),
        (6, ["out_of_range:amount"], *no_features),
        (BAD_OFFSET, ["malformed_json"], *no_features),
        (TOMBSTONE_OFFSET, ["malformed_json"], *no_features),
    ], out_df.schema)
    assert_df_equality(out_df, expected_df, ignore_nullable=True)


def test_silver_is_the_valid_rows_with_features_in_silver_order(spark, batch_df):
    silver_df = to_silver(batch_df)
    assert silver_df.columns == SILVER_COLUMNS
    out_df = silver_df.orderBy("offset").select("transaction_id", "quality_flags", "v_count", "f_log_amount",
                                                "f_amount_to_mean")
    expected_df = spark.createDataFrame([
        ("t1", [], 1.0, math.log1p(10.0), 1.0),
        ("t2", ["payment_method_known"], 2.0, math.log1p(30.0), 30.0 / 20.0),
        ("u1", ["amount_range_gaming"], 1.0, math.log1p(2500.0), 1.0),
        ("t3", [], 3.0, math.log1p(20.0), 20.0 / 20.0),
        ("t4", [], 1.0, math.log1p(5.0), 1.0),
    ], out_df.schema)
    assert_approx_df_equality(out_df, expected_df, 1e-12, ignore_nullable=True)
    with_id_df = silver_df.transform(with_batch_id, 7)
    assert with_id_df.columns == [*SILVER_COLUMNS, "batch_id"]
    assert [r["batch_id"] for r in with_id_df.select("batch_id").collect()] == [7] * 5


def test_bronze_keeps_every_record_as_it_came(spark, config, records_df, batch_df):
    bronze_df = to_bronze(batch_df, config, 3)
    assert bronze_df.columns == ["kafka_key", "value", "topic", "partition", "offset", "kafka_timestamp", "domain",
                                 "ingest_time", "ingest_date", "batch_id"]
    as_sent_df = records_df.select("offset", "value", F.col("timestamp").alias("kafka_timestamp"))
    assert_df_equality(bronze_df.select("offset", "value", "kafka_timestamp"), as_sent_df, ignore_row_order=True,
                       ignore_nullable=True)
    out_df = bronze_df.select("offset", "kafka_key", "topic", "domain", "batch_id").orderBy("offset")
    actors = [e["actor_id"] for e in EVENTS] + ["g-1"] * len(BROKEN)  # broken records travel with t1's key
    expected_df = spark.createDataFrame([(i, a, config.kafka.topics["gaming"], "gaming", 3)
                                         for i, a in enumerate(actors)], out_df.schema)
    assert_df_equality(out_df, expected_df, ignore_nullable=True)
    assert bronze_df.filter(F.col("ingest_date") != F.to_date("ingest_time")).count() == 0


def test_quarantine_is_the_rejected_records_with_their_reasons(spark, batch_df):
    quarantine_df = to_quarantine(batch_df, 3)
    assert quarantine_df.columns == ["value", "topic", "partition", "offset", "kafka_timestamp", "reasons",
                                     "ingest_time", "ingest_date", "batch_id"]
    out_df = quarantine_df.select("offset", "value", "kafka_timestamp", "reasons", "batch_id").orderBy("offset")
    sent_at = lambda event: dt.datetime.fromisoformat(event["timestamp"]) + PRODUCE_LAG  # noqa: E731
    expected_df = spark.createDataFrame([
        (5, json.dumps(T2).encode(), sent_at(T2), ["duplicate"], 3),
        (6, json.dumps(EVENTS[6]).encode(), sent_at(EVENTS[6]), ["out_of_range:amount"], 3),
        (BAD_OFFSET, BROKEN[0], sent_at(EVENTS[0]), ["malformed_json"], 3),
        (TOMBSTONE_OFFSET, None, sent_at(EVENTS[0]), ["malformed_json"], 3),
    ], out_df.schema)
    assert_df_equality(out_df, expected_df, ignore_nullable=True)


def probability(**by_class):
    return Vectors.dense([by_class.get(c, 0.0) for c in MODEL_CLASSES])


def test_with_scores_turns_probabilities_into_score_severity_and_alert(spark, config):
    """Severity from the expected loss (fraud score x dollars, the model registered without
    calibration knots); the rules are off here (fraud.rules has its own tests)."""
    assert config.alerts.severity == {"critical": 10000, "high": 1000, "medium": 100}, "the floors below"
    no_rules = replace(config, rules=replace(config.rules, disabled=tuple(r.name for r in rule_book().rules)))
    spread = {c: 0.125 for c in MODEL_CLASSES[1:7]}
    # Dyadic probabilities and amounts: scores and losses are exact, so losses land exactly on the floors.
    predictions = [  # (transaction, class, probability, amount, loss, severity, is_alert at threshold 0.75)
        ("a", "regular", probability(regular=0.9375, fraud_card_testing=0.0625), 1600.0, 100.0, "medium", False),
        ("b", "fraud_card_testing", probability(regular=0.0625, fraud_card_testing=0.9375), 16000.0, 15000.0,
         "critical", True),
        ("c", "fraud_structuring", probability(regular=0.25, fraud_structuring=0.75), 1600.0, 1200.0, "high", True),
        ("d", "fraud_promo_abuse", probability(regular=0.375, fraud_promo_abuse=0.625), 80.0, 50.0, "low", False),
        ("e", "regular", probability(regular=0.25, **spread), 16.0, 12.0, "low", False),  # "regular" never alerts
    ]
    predictions_df = spark.createDataFrame([(*p[:3], p[3]) for p in predictions],
                                           ["transaction_id", "predicted_class", "probability", "amount_usd"])
    out_df = with_scores(predictions_df, no_rules, "v-test", 0.75).drop("probability")
    expected_df = spark.createDataFrame(
        [(txn, cls, amount, dict(zip(MODEL_CLASSES, p.toArray().tolist())), 1.0 - float(p[0]), 1.0 - float(p[0]),
          loss, severity, [], ["model"] if alert else [], alert, "v-test")
         for txn, cls, p, amount, loss, severity, alert in predictions], out_df.schema)
    assert_df_equality(out_df, expected_df, ignore_nullable=True)


class CardTestingAbove1000(Transformer):
    """A fitted model's stand-in (scoring is under test here, not the forest): card testing with
    P(regular) 1/16 when the amount is above 1000 US dollars, else regular with 15/16."""

    def _transform(self, df):
        is_fraud = F.col("amount_usd") > 1000
        p_regular = F.when(is_fraud, 0.0625).otherwise(0.9375)
        by_class = [p_regular if c == "regular" else (1 - p_regular) if c == "fraud_card_testing" else F.lit(0.0)
                    for c in MODEL_CLASSES]
        return df.select("*", array_to_vector(F.array(*by_class)).alias("probability"),
                         F.when(is_fraud, "fraud_card_testing").otherwise("regular").alias("predicted_class"))


def test_score_silver_gives_gold_rows_with_the_models_version_and_threshold(spark, config, batch_df):
    model = LoadedModel("v-chain", PipelineModel([CardTestingAbove1000()]), threshold=0.9)
    gold_df = score_silver(to_silver(batch_df), model, config)
    assert gold_df.columns == [c for c in GOLD_COLUMNS if c != "scored_at"]
    assert gold_df.transform(with_scored_at).columns == GOLD_COLUMNS
    out_df = gold_df.select("transaction_id", "quality_flags", "predicted_class", "fraud_score", "is_alert",
                            "model_version")
    regular = ("regular", 0.0625, False, "v-chain")
    expected_df = spark.createDataFrame([
        ("t1", [], *regular),
        ("t2", ["payment_method_known"], *regular),
        ("u1", ["amount_range_gaming"], "fraud_card_testing", 0.9375, True, "v-chain"),
        ("t3", [], *regular),
        ("t4", [], *regular),
    ], out_df.schema)
    assert_df_equality(out_df, expected_df, ignore_nullable=True, ignore_row_order=True)
