"""Data quality: real Great Expectations validations on good and bad batches (real Spark, real
PostgreSQL, real Delta), the stream's routing to quarantine, the training gate."""

import json
import subprocess
import sys
from pathlib import Path
from dataclasses import replace

import psycopg
import pytest
from pyspark.sql import functions as F

from dash_app import data as dash_data
from dash_app.callbacks import AppContext, quality_view
from fraud.model_classes import MODEL_CLASSES
from fraud.cli import UserError
from fraud.config import ConfigError
from fraud.model.forest import with_label
from fraud.model.training import train_and_register
from fraud.parse import kafka_records
from fraud.pipeline import batch_records, silver_from_records
from fraud.quality.gate import QualityGateFailed, gate_training_set
from fraud.quality.results import QualityResults
from fraud.quality.routing import ExpectationRouting
from fraud.quality.suites import EVENT_SUITE
from fraud.counts import BatchCounts
from fraud.registry import Registry

from conftest import ROOT
from pipeline_support import real_batch_writer

EVENTS = 120


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """Simulator events (one deterministic run) as dicts."""
    path = tmp_path_factory.mktemp("quality") / "events.jsonl"
    subprocess.run([sys.executable, "-m", "fraud_simulator", "--events", str(EVENTS), "--seed", "11",
                    "--output", str(path)], check=True, capture_output=True, cwd=ROOT, timeout=120)
    return [json.loads(line) for line in path.read_text().splitlines()]


def first(events, domain):
    return next(e for e in events if e["domain"] == domain)


def broken(events):
    """Contract-valid events (the parser accepts them) that each fail one expectation of the suite, and
    traffic in other currencies that fails none; ``{transaction id: expectation}`` of the failing ones."""
    gaming, ecommerce, fintech = (dict(first(events, d)) for d in ("gaming", "ecommerce", "fintech"))
    too_big = {**gaming, "transaction_id": "bad-amount", "amount": 9_999.0}
    odd_currency = {**fintech, "transaction_id": "bad-currency", "currency": "XAU"}
    cart = [{**ecommerce["cart_items"][0], "category": "weapons"}]
    bad_cart = {**ecommerce, "transaction_id": "bad-cart", "cart_items": cart}
    bad_country = {**ecommerce, "transaction_id": "bad-country",
                   "shipping_address": {**ecommerce["shipping_address"], "country": "usa"}}
    cash = {**gaming, "transaction_id": "bad-payment", "payment_method": "cash"}
    half_yen = {**gaming, "transaction_id": "bad-yen", "currency": "JPY", "amount": 1_500.5}
    ordinary = [{**fintech, "transaction_id": "chf-wire", "currency": "CHF", "amount": 250_000.0},
                {**gaming, "transaction_id": "yen-skin", "currency": "JPY", "amount": 120_000.0},
                {**fintech, "transaction_id": "kwd-wire", "currency": "KWD", "amount": 1_234.567}]
    return [too_big, odd_currency, bad_cart, bad_country, cash, half_yen] + ordinary, {
        "bad-amount": "amount_range_gaming", "bad-currency": "currency_known", "bad-cart": "cart_categories_known",
        "bad-country": "shipping_country_format", "bad-payment": "payment_method_known",
        "bad-yen": "amount_minor_units"}


@pytest.fixture
def writer(spark, config, stack, tmp_path):
    """A real AlertPath on its own database, lake and checkpoint (no model: no gold)."""
    cfg = replace(config, quality=replace(config.quality, gx_every_n_batches=1, data_docs_dir=str(tmp_path / "docs"),
                                          actions={"payment_method_known": "quarantine"}))
    with real_batch_writer(spark, cfg, stack, tmp_path) as writer_dsn_config:
        yield writer_dsn_config


@pytest.mark.integration
def test_unusual_rows_are_scored_and_flagged_and_only_configured_ones_quarantined(spark, events, writer):
    alert_path, dsn, cfg = writer
    bad, expected = broken(events)
    malformed = {**first(events, "fintech"), "transaction_id": "no-amount"}
    del malformed["amount"]
    alert_path(batch_records(kafka_records(spark, cfg, events + bad + [malformed]), cfg), 0)
    alert_path.lake.flush()
    assert alert_path.quality.drain() is None  # the GX checkpoint runs beside the stream

    silver_df = spark.read.format("delta").load(cfg.table_path("silver"))
    quarantine_df = spark.read.format("delta").load(cfg.table_path("quarantine"))
    reasons = {json.loads(r["value"])["transaction_id"]: r["reasons"] for r in quarantine_df.collect()}
    # The contract quarantines what cannot be scored; of the expectations only the one configured so.
    assert reasons == {"bad-payment": ["expectation:payment_method_known"], "no-amount": ["missing_field:amount"]}
    flags = {r["transaction_id"]: r["quality_flags"] for r in silver_df.select("transaction_id", "quality_flags").collect()}
    assert len(flags) + len(reasons) == len(events) + len(bad) + 1, "every record in exactly one of the two"
    assert not set(flags) & set(reasons)
    flagged = {txn: [name] for txn, name in expected.items() if txn != "bad-payment"}
    assert {txn: f for txn, f in flags.items() if f} == flagged, "other currencies' ordinary rows carry no flag"

    with psycopg.connect(dsn) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT engine, success, rows_checked, rows_failed, rows_flagged, failures FROM quality_results"
            " WHERE batch_id = 0 AND suite = %s", (EVENT_SUITE,))}
    success, checked, failed, flagged_rows, failures = rows["spark"]
    assert (success, checked, failed, flagged_rows) == (False, len(events) + len(bad), len(expected), len(flagged))
    by_name = {f["expectation"]: f for f in failures}
    assert set(by_name) == set(expected.values())
    assert {name: f["action"] for name, f in by_name.items()} == {
        name: "quarantine" if name == "payment_method_known" else "flag" for name in expected.values()}
    assert by_name["amount_range_gaming"]["examples"] == [{"transaction_id": "bad-amount", "value": "9999.0"}]
    gx_success, _, _, _, gx_failures = rows["great_expectations"]
    assert gx_success is False
    # The Spark expressions count exactly what the GX checkpoint counts, expectation by expectation.
    assert {f["expectation"]: f["unexpected"] for f in gx_failures} == {n: 1 for n in expected.values()}
    assert {f["expectation"]: f["unexpected"] for f in failures} == {n: 1 for n in expected.values()}
    assert (Path(cfg.quality.data_docs_dir) / "index.html").exists(), "the checkpoint built the data docs"
    by_reason = {r[0] for r in psycopg.connect(dsn).execute(
        "SELECT jsonb_object_keys(quarantine_by_reason) FROM batch_metrics WHERE batch_id = 0")}
    assert by_reason == {"expectation:payment_method_known", "missing_field:amount"}

    # A good batch (the same events, later offsets) passes both engines and quarantines nothing.
    alert_path(batch_records(kafka_records(spark, cfg, events[:40], first_offset=1000), cfg), 1)
    alert_path.lake.flush()
    assert alert_path.quality.drain() is None
    with psycopg.connect(dsn) as conn:
        good = dict(conn.execute("SELECT engine, success FROM quality_results WHERE batch_id = 1").fetchall())
    assert good == {"spark": True, "great_expectations": True}
    assert spark.read.format("delta").load(cfg.table_path("quarantine")).filter("batch_id = 1").count() == 0

    # The Dash data-quality page reads these rows: pass rate per batch, the failures with examples.
    source = dash_data.DataSource(replace(cfg, postgres=replace(cfg.postgres, dsn=dsn)))
    try:
        status, kpis, figure, table = quality_view(AppContext(cfg, source, None), "1h")
    finally:
        source.close()
    assert status is None
    assert list(figure.data[0].y) == [round(1 - len(expected) / (len(events) + len(bad)), 4), 1.0]
    assert list(figure.data[1].y) == [0.0, 1.0], "GX checkpoint: batch 0 failed, batch 1 passed"
    text = str(table)
    assert "amount_range_gaming" in text and "bad-amount = '9999.0'" in text
    assert f"{len(flagged):,} of" in str(kpis) and "quarantine" in text


@pytest.mark.integration
def test_failing_suite_stops_the_stream_only_when_configured(spark, events, writer):
    alert_path, _, cfg = writer
    bad, _ = broken(events)
    strict = QualityResults(replace(cfg, quality=replace(cfg.quality, fail_stream_on_failure=True,
                                                         gx_every_n_batches=0)), alert_path.metrics.pool)
    routed_df = batch_records(kafka_records(spark, cfg, events[:20] + bad[:1]), cfg).persist()
    counts = BatchCounts.of(routed_df.toArrow())
    with pytest.raises(QualityGateFailed, match="amount_range_gaming"):
        strict.after_batch("q-strict", 7, routed_df, counts.by_outcome)
    lenient = QualityResults(replace(cfg, quality=replace(cfg.quality, gx_every_n_batches=0)),
                             alert_path.metrics.pool)
    summary = lenient.after_batch("q-lenient", 7, routed_df, counts.by_outcome)
    assert summary["success"] is False and summary["rows_failed"] == summary["rows_flagged"] == 1


def test_an_action_for_no_expectation_is_a_config_error(config):
    with pytest.raises(ConfigError, match="quality.actions.payment_method_allowed: no row-level expectation"):
        ExpectationRouting(replace(config, quality=replace(config.quality,
                                                           actions={"payment_method_allowed": "flag"})))


def test_training_gate_passes_a_good_set_and_refuses_a_bad_one(spark, config, events):
    silver_df = silver_from_records(kafka_records(spark, config, events), config).persist()
    labelled_df = with_label(silver_df)
    present = sorted({r["label"] for r in labelled_df.select("label").distinct().collect()})
    lenient = replace(config, quality=replace(config.quality, min_class_rows=1, min_regular_share=0.1,
                                              data_docs_dir=None))
    summary = gate_training_set(labelled_df, lenient, present)
    assert summary["success"] and summary["rows"] == len(events)

    # The real training entry refuses a set with holes before fitting, in one line naming what failed.
    assert len(present) < len(MODEL_CLASSES)
    holed_df = silver_df.withColumn("v_count", F.when(F.col("domain") == "gaming", None).otherwise(F.col("v_count")))
    gaming = holed_df.filter(F.col("domain") == "gaming").count()
    gate = config.model.gate.out_of_profile  # training reads these before anything else
    Registry.for_config(config).write_gate_events(["{}"], {"profile": gate.profile, "seed": gate.seed})
    with pytest.raises(QualityGateFailed) as err:
        train_and_register(spark, config, holed_df, holed_df, {}, progress=lambda _: None)
    message = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in message, "fraud.cli prints it as one line, exit 2"
    assert message.startswith("training set failed data quality")
    assert "every_class_present" in message and "class_rows_minimum" in message
    assert f"model_inputs_not_null ({gaming} rows, e.g. v_count: {gaming} rows)" in message
