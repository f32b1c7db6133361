"""Typology rules beside the model (fraud.rules) and the severity that ranks by expected loss
(fraud.severity): the catalogue, one evaluation on the driver and in Spark, and on the real stack a
rule that alerts where the model does not, a shadowed rule that never alerts, the reason in the API."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from fraud.cli import UserError
from fraud.config import ConfigError, load_config
from fraud.model_classes import FRAUD_CLASSES
from fraud.parse import kafka_records
from fraud.pipeline import batch_records
from fraud.rules import MODEL, NUMERIC_COLUMNS, rule_book
from fraud.severity import LEVELS, Calibration, fit, ladder, levels_of

from conftest import ROOT
from pipeline_support import real_batch_writer, without_user


def test_every_rule_of_the_catalogue_names_its_source_and_a_fraud_class():
    rules = rule_book().rules
    assert {r.name for r in rules} >= {"structuring", "high_risk_jurisdiction", "card_testing", "multi_account_promo"}
    for rule in rules:
        assert rule.alert_type in FRAUD_CLASSES and len(rule.source) > 40 and rule.when, rule.name
    jurisdictions = rule_book().by_name("high_risk_jurisdiction").when[0].value
    assert {"IR", "KP", "MM"} <= set(jurisdictions), "the FATF call-for-action list is reference data"


@pytest.mark.parametrize("rule, message", [
    ({"when": {"v_count": {">=": "two"}}}, "v_count: a number column takes {op: number}"),
    ({"when": {"country_to": {"in": "@no_such_list"}}}, "no reference list 'no_such_list'"),
    ({"when": {"password": {"==": "x"}}}, "'password' is not a column a rule can read"),
    ({"alert_type": "fraud_unheard_of"}, "alert_type must be a fraud class"),
    ({"because": "{v_count:.0f} to {nowhere}"}, "because names 'nowhere'"),
    ({"because": "{v_count:zz}"}, "because: "),
])
def test_a_rules_file_that_cannot_be_used_is_one_line_naming_the_rule(tmp_path, rule, message):
    good = {"name": "r1", "domain": "fintech", "alert_type": "fraud_structuring", "description": "d",
            "source": "s", "when": {"amount_usd": {">=": 1}}, "because": "{amount_usd}"}
    path = tmp_path / "rules.yaml"
    path.write_text(json.dumps({"rules": [{**good, **rule}]}))
    with pytest.raises(UserError) as err:
        rule_book(str(path))
    assert message in str(err.value) and "rule 1 (r1)" in str(err.value) and "\n" not in str(err.value)


def test_the_config_refuses_a_shadowed_rule_that_does_not_exist(tmp_path):
    text = (ROOT / "conf" / "local.yaml").read_text().replace("  shadow: []", "  shadow: [structurng]")
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"rules.shadow: no rule named 'structurng'"):
        load_config(tmp_path / "c.yaml", environ={})


def _rows() -> pa.Table:
    """Rows at, over and under the catalogue's thresholds, and with the values rules read missing."""
    rows = [
        # structuring: under $10,000 each, over it together; then the same at the threshold (no match)
        {"domain": "fintech", "amount_usd": 9_800.0, "v_count": 2.0, "v_amount_sum": 19_600.0},
        {"domain": "fintech", "amount_usd": 10_000.0, "v_count": 2.0, "v_amount_sum": 20_000.0},
        {"domain": "fintech", "amount_usd": 8_000.0, "v_count": 1.0, "v_amount_sum": 8_000.0},
        # a high-risk jurisdiction, and a missing destination (never matches, whatever the operator)
        {"domain": "fintech", "amount_usd": 50_000.0, "country_to": "IR", "v_count": 1.0},
        {"domain": "fintech", "amount_usd": 50_000.0, "country_to": None, "v_count": 1.0},
        # card testing in e-commerce; the same numbers in gaming (another domain: no match)
        {"domain": "ecommerce", "amount_usd": 3.0, "v_count": 6.0, "v_amount_max": 9.0, "v_secs_since_prev": 4.0},
        {"domain": "gaming", "amount_usd": 3.0, "v_count": 6.0, "v_amount_max": 9.0, "v_secs_since_prev": 4.0},
        {"domain": "ecommerce", "amount_usd": 3.0, "v_count": 6.0, "v_amount_max": 9.0, "v_secs_since_prev": None},
        # a domestic fan-out to three payees; the same transfer sent abroad (no match)
        {"domain": "fintech", "amount_usd": 3_000.0, "v_count": 3.0, "v_distinct_dest": 3.0, "v_amount_sum": 9_000.0,
         "f_is_cross_border": 0.0},
        {"domain": "fintech", "amount_usd": 3_000.0, "v_count": 3.0, "v_distinct_dest": 3.0, "v_amount_sum": 9_000.0,
         "f_is_cross_border": 1.0},
        # a burst of purchases in a short session; the same over a long session (no match)
        {"domain": "gaming", "amount_usd": 60.0, "v_count": 6.0, "v_amount_sum": 360.0, "f_session_s": 200.0},
        {"domain": "gaming", "amount_usd": 60.0, "v_count": 6.0, "v_amount_sum": 360.0, "f_session_s": 2_400.0},
    ]
    columns = {c: pa.array([r.get(c) for r in rows], pa.float64()) for c in NUMERIC_COLUMNS}
    return pa.table({"domain": pa.array([r["domain"] for r in rows]),
                     "country_to": pa.array([r.get("country_to") for r in rows], pa.string()), **columns})


def test_rules_match_on_the_driver_as_in_spark(spark):
    book = rule_book(shadow=("card_testing",))
    table = _rows()
    on_driver = book.hits(table)
    assert on_driver == [["structuring"], [], [], ["high_risk_jurisdiction"], [], ["card_testing"], [], [],
                         ["payee_fan_out"], [], ["spending_burst"], []]
    assert book.raised_by(False, ["card_testing"]) == [], "a shadowed rule raises nothing"
    assert book.raised_by(True, ["structuring"]) == [MODEL, "rule:structuring"]

    frame = spark.createDataFrame(table).select("*", book.hits_column().alias("hits"))
    frame = frame.select("hits", book.raised_by_column(frame["hits"].isNull(), frame["hits"]).alias("raised_by"))
    in_spark = frame.collect()
    assert [r["hits"] for r in in_spark] == on_driver
    assert [r["raised_by"] for r in in_spark] == [book.raised_by(False, h) for h in on_driver]


def test_calibration_is_isotonic_and_computed_alike_on_the_driver_and_in_spark(spark):
    rng = np.random.default_rng(3)
    scores = rng.uniform(0, 1, 5000)
    fraud = rng.uniform(0, 1, 5000) < scores ** 2  # true probability: score squared
    bins = [(s, int(n), int(f)) for s, n, f in
            ((b / 20 + 0.025, ((scores * 20).astype(int) == b).sum(), fraud[(scores * 20).astype(int) == b].sum())
             for b in range(20))]
    calibration = fit(bins)
    assert list(calibration.probabilities) == sorted(calibration.probabilities), "monotone"
    probe = np.array([0.0, 0.1, 0.5, 0.7, 0.99, 1.0, *rng.uniform(0, 1, 200)])
    driver = calibration.probability(probe)
    assert abs(driver[2] - 0.25) < 0.08 and abs(driver[3] - 0.49) < 0.08, "near score squared"
    frame = spark.createDataFrame([(float(s),) for s in probe], "score double")
    in_spark = [r[0] for r in frame.select(calibration.column(frame["score"])).collect()]
    assert in_spark == driver.tolist(), "bit for bit"
    assert Calibration().probability(probe) is probe, "a model registered without knots: the score itself"


def test_severity_ranks_by_expected_loss_in_dollars(config):
    steps = ladder(config.alerts.severity)
    assert [level for level, _ in steps] == list(LEVELS[:-1]) and steps[0][1] > 1, "dollars, not a score"
    losses = np.array([50_000.0, 2_000.0, 150.0, 5.0])
    assert levels_of(losses, steps).tolist() == list(LEVELS)


# --- on the real stack ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fraud_events(tmp_path_factory) -> list[dict]:
    """Structuring and card-testing sequences among regular traffic (simulator, fixed seed)."""
    path = tmp_path_factory.mktemp("rule-events") / "events.jsonl"
    subprocess.run([sys.executable, "-m", "fraud_simulator", "--domain", "all", "--events", "600", "--seed", "12",
                    "--fraud-rate", "0.6", "--finish-sequences", "--test-id", "rules",
                    "--pattern-weights", "fraud_structuring=3,fraud_card_testing=3", "--output", str(path)],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.integration
def test_a_rule_alerts_where_the_model_does_not_a_shadowed_rule_never_and_the_api_says_why(
        spark, stack, trained_pipeline, fraud_events, tmp_path):
    """The model made unable to alert (threshold above any score), card testing shadowed: every alert
    is a rule's, structuring raises them with its reason in the API, card testing only counts."""
    from dash_app.app import create_app

    base = trained_pipeline.config
    config = dataclasses.replace(
        base, models_root=base.models_root or base.table_path("models"),
        alerts=dataclasses.replace(base.alerts, threshold=1.01),
        rules=dataclasses.replace(base.rules, shadow=("card_testing",)),
        quality=dataclasses.replace(base.quality, gx_every_n_batches=0))
    with real_batch_writer(spark, config, stack, tmp_path) as (alert_path, dsn, cfg):
        alert_path(batch_records(kafka_records(spark, cfg, fraud_events), cfg), 0)
        alert_path.lake.flush()
    with psycopg.connect(dsn) as conn:
        alerts = conn.execute("SELECT alert_id, alert_type, raised_by, rule_reasons, severity FROM alerts").fetchall()
        hits = dict(conn.execute("SELECT rule || ':' || shadow::text, count(*) FROM rule_hits GROUP BY 1").fetchall())
    assert alerts and all(MODEL not in raised for _, _, raised, _, _ in alerts), "the model cannot alert here"
    structuring = [a for a in alerts if a[2] == ["rule:structuring"]]
    assert structuring and all(a[1] == "fraud_structuring" for a in structuring)
    assert not [a for a in alerts if "rule:card_testing" in a[2]], "a shadowed rule raises no alert"
    assert hits.get("card_testing:true", 0) > 0 and hits.get("structuring:false", 0) > 0, hits

    alert_id = structuring[0][0]
    app = create_app(ROOT / "conf" / "local.yaml", {"FRAUD_POSTGRES_DSN": without_user(dsn),
                                                    "FRAUD_LAKE_ROOT": str(tmp_path / "dash-lake")})
    try:
        detail = app.server.test_client().get(f"/api/alerts/{alert_id}").get_json()
    finally:
        app.server.extensions["fraud_dash"].source.close()
    assert detail["raised_by"] == ["rule:structuring"]
    reason = detail["rule_reasons"][0]
    assert reason["rule"] == "structuring" and "under the $10,000 reporting threshold" in reason["reason"], reason
    assert "31 CFR 1010.311" in reason["source"]
    assert all(t["raised_by"] == ["rule:structuring"] for t in detail["transactions"])
    assert detail["expected_loss_usd"] >= 0 and detail["severity"] in LEVELS


# --- evaluating model and rules together ---------------------------------------------------------

def test_detection_by_source_says_which_caught_each_sequence_and_how_precise_each_was():
    from fraud.model.evaluation import detection_by_source

    sequences = [
        {"domain": "fintech", "label": "fraud_structuring", "group": "pair", "transaction_ids": ["s1", "s2"]},
        {"domain": "fintech", "label": "fraud_structuring", "group": "pair", "transaction_ids": ["s3"]},
        {"domain": "fintech", "label": "fraud_money_laundering", "group": "short", "transaction_ids": ["m1"]},
        {"domain": "fintech", "label": "regular", "group": "regular_saver", "transaction_ids": ["r1"]},
    ]
    scored = [
        {"transaction_id": "s1", "domain": "fintech", "actor_id": "a", "predicted_class": "regular",
         "raised_by": ["rule:structuring"]},
        {"transaction_id": "s2", "domain": "fintech", "actor_id": "a", "predicted_class": "fraud_structuring",
         "raised_by": ["model", "rule:structuring"]},
        {"transaction_id": "s3", "domain": "fintech", "actor_id": "b", "predicted_class": "fraud_structuring",
         "raised_by": ["model"]},
        {"transaction_id": "m1", "domain": "fintech", "actor_id": "c", "predicted_class": "regular", "raised_by": []},
        {"transaction_id": "r1", "domain": "fintech", "actor_id": "d", "predicted_class": "regular",
         "raised_by": ["rule:high_risk_jurisdiction"]},
    ]
    result = detection_by_source(scored, sequences, {"structuring": "fraud_structuring",
                                                     "high_risk_jurisdiction": "fraud_money_laundering"})
    assert result["by_group"] == {
        "fintech/pair": {"sequences": 2, "model": 1, "rules": 0, "both": 1, "missed": 0},
        "fintech/short": {"sequences": 1, "model": 0, "rules": 0, "both": 0, "missed": 1}}
    fintech = result["by_domain"]["fintech"]
    assert fintech["recall"] == round(2 / 3, 4)
    # Alerts: (a, structuring) by both, (b, structuring) by the model, (d, laundering) by a rule, wrongly.
    assert (fintech["alerts_all"], fintech["precision_all"]) == (3, round(2 / 3, 4))
    assert (fintech["alerts_model"], fintech["precision_model"]) == (2, 1.0)
    assert (fintech["alerts_rules"], fintech["precision_rules"]) == (2, 0.5)


def test_the_variants_are_held_out_contract_valid_and_carry_their_ground_truth(config):
    from fraud.schemas import contract_violations
    from fraud_simulator.patterns import PATTERNS
    from fraud_simulator.variants import VARIANTS, variant_events

    assert {p.name for p in VARIANTS.values()} == set(FRAUD_CLASSES), "every fraud pattern has variants"
    assert not set(VARIANTS) & set(PATTERNS)
    events, sequences = variant_events(config, seed=3, events=1500)
    assert not [e for e in events if contract_violations(e)]
    by_id = {e["transaction_id"]: e for e in events}
    assert sorted(t for s in sequences for t in s.transaction_ids) == sorted(by_id)
    ring = next(s for s in sequences if s.variant == "ring")
    assert len({by_id[t]["actor_id"] for t in ring.transaction_ids}) == len(ring.transaction_ids) > 1, \
        "a ring's orders come from as many accounts"
    assert {(s.pattern, s.variant) for s in sequences if s.is_fraud} == {(p.name, p.variant) for p in VARIANTS.values()}
