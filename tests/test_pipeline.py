"""The record path (fraud.pipeline), one step at a time, on Kafka-shaped records built in batch."""

from datetime import datetime, timedelta, timezone
import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from fraud.parse import PRODUCE_LAG, kafka_records
from fraud.schemas import RECORD_COLUMNS
from fraud.pipeline import batch_records, is_valid, to_bronze, to_quarantine, to_silver, with_reasons
from fraud.schemas import SILVER_COLUMNS
from fraud_simulator.__main__ import build_options
from fraud_simulator.run import run_simulation


@pytest.fixture(scope="module")
def events(config, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "events.jsonl"
    options = build_options(config, domain="all", load_level=None, rate=None, events=300, duration=None,
                            fraud_rate=0.3, seed=4, test_id="pipeline", pattern_weights=None, output=str(path))
    run_simulation(config, options)
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def mixed(spark, config, events):
    """The simulated events, then one record per kind of trouble, by offset."""
    gaming = next(e for e in events if e["domain"] == "gaming")
    trouble = {
        "cash": json.dumps({**gaming, "transaction_id": "cash", "payment_method": "cash"}).encode(),
        "tombstone": None,
        "broken": b'{"transaction_id": ',
        "negative": json.dumps({**gaming, "transaction_id": "negative", "amount": -5}).encode(),
    }
    records_df = kafka_records(spark, config, events).union(
        kafka_records(spark, config, [gaming] * len(trouble), values=list(trouble.values()),
                      first_offset=len(events)))
    offsets = {name: len(events) + i for i, name in enumerate(trouble)}
    return batch_records(records_df, config).cache(), offsets


def test_kafka_records_travel_as_a_producer_sends_them(spark, config, events):
    rows = kafka_records(spark, config, events[:3] + [{**events[0], "domain": "casino", "timestamp": "soon"}],
                         first_offset=10).collect()
    for row, event in zip(rows, events[:3]):
        assert row["key"] == event["actor_id"].encode()
        assert json.loads(row["value"]) == event
        assert row["topic"] == config.kafka.topics[event["domain"]]
        produced = datetime.fromisoformat(event["timestamp"]) + PRODUCE_LAG
        assert row["timestamp"].replace(tzinfo=timezone.utc) == produced.astimezone(timezone.utc)
    assert [r["offset"] for r in rows] == [10, 11, 12, 13]
    odd = rows[3]
    assert odd["topic"] == "unknown-topic"
    assert abs(odd["timestamp"].replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_reasons_name_every_failure_and_nothing_on_good_records(spark, config, mixed, events):
    batch_df, offsets = mixed
    rows = {r["offset"]: r for r in batch_df.select("offset", "reasons", "quality_flags").collect()}
    reasons = {offset: r["reasons"] for offset, r in rows.items()}
    assert all(reasons[i] == [] for i in range(len(events))), "simulated events are valid"
    assert all(rows[i]["quality_flags"] == [] for i in range(len(events))), "and unflagged"
    # An unlisted payment method is unusual, not unscorable: valid, with a flag.
    assert (reasons[offsets["cash"]], rows[offsets["cash"]]["quality_flags"]) == ([], ["payment_method_known"])
    assert reasons[offsets["tombstone"]] == ["malformed_json"]
    assert reasons[offsets["broken"]] == ["malformed_json"]
    assert "out_of_range:amount" in reasons[offsets["negative"]]


def test_with_reasons_keeps_the_record_columns(spark, config, events):
    reasons_df = kafka_records(spark, config, events[:5]).transform(with_reasons, config)
    assert reasons_df.columns == [*RECORD_COLUMNS, "quality_flags"]


def test_every_record_lands_in_bronze_and_in_exactly_one_of_silver_or_quarantine(config, mixed, events):
    batch_df, offsets = mixed
    bronze = {r["offset"] for r in to_bronze(batch_df, config, 3).select("offset").collect()}
    silver = {r["offset"] for r in to_silver(batch_df).select("offset").collect()}
    quarantined = {r["offset"] for r in to_quarantine(batch_df, 3).select("offset").collect()}
    assert bronze == set(range(len(events) + len(offsets)))
    assert silver | quarantined == bronze and not silver & quarantined
    assert quarantined == {offset for name, offset in offsets.items() if name != "cash"}, "cash is only flagged"


def test_silver_has_the_explicit_columns_and_only_valid_rows(mixed):
    batch_df, _ = mixed
    silver_df = to_silver(batch_df)
    assert silver_df.columns == SILVER_COLUMNS
    expected = batch_df.filter(is_valid()).select("transaction_id", "v_count")
    assert_df_equality(silver_df.select("transaction_id", "v_count"), expected, ignore_row_order=True)
    assert silver_df.filter(F.col("f_log_amount").isNull()).count() == 0
