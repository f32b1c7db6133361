"""The whole product on the real stack: simulator -> Kafka -> job -> Delta + PostgreSQL.

One pipeline (own topics, lake, checkpoints, database) is built once for the module:
simulated history goes through the job, a model is trained on it and registered; the live runs,
sent meanwhile into a pipeline of their own (conftest ``live_traffic``), are then scored with it.
Figures the issue asks for are printed (run with -s to see them). Crashes and restarts of this
job are tests/test_chaos.py's.
"""

import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from chispa import assert_df_equality
from confluent_kafka import Producer
from pyspark.sql import functions as F

from fraud.detection import evaluate_run
from fraud.config import GateConfig
from fraud.schemas import CATEGORICAL_FEATURES, NUMERIC_FEATURES, SHARED_FEATURES, VELOCITY_FEATURES
from fraud.model.forest import with_label
from fraud.pipeline import batch_records, is_valid
from fraud_simulator.__main__ import build_options
from fraud_simulator.history import write_gate_events
from fraud_simulator.run import FILE_MODE_START, run_simulation
from pipeline_support import CLUSTER, as_role

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(trained_pipeline):
    return trained_pipeline


@pytest.fixture(scope="module")
def scored_live(pipeline, live_traffic, spark, tmp_path_factory):
    """(live pipeline, {test id: run summary}, retraining's figures): ``jobs/retrain.py`` on the
    end-to-end pipeline's silver after an analyst called one of its alerts a false positive,
    registering a challenger beside the model it trained; then the live runs, once sent, scored by
    the job with both (fraud.shadow). Retraining runs as on EMR: its own driver, and two executor
    JVMs (``local-cluster``) that fit the forest, since a local-cluster driver runs no task itself."""
    import yaml

    from fraud.labels import record_action
    from fraud.model.training import retraining_set

    alert_history_of_one_actor(pipeline, spark)
    with pipeline.connect() as conn:
        alert_id, transactions = conn.execute(
            "SELECT alert_id, array_agg(transaction_id) FROM alerts JOIN alert_transactions USING (alert_id)"
            " GROUP BY alert_id ORDER BY alert_id LIMIT 1").fetchone()
        record_action(conn, alert_id, "false_positive", "e2e-analyst")
    models = tmp_path_factory.mktemp("retrain") / "models"  # the chaos pipelines copy the e2e registry
    shutil.copytree(pipeline.root / "lake" / "models", models)
    # The test is of the loop (verdicts in, a challenger out), on a smaller budget: 20 trees, 5,000
    # out-of-profile events, the gate's floors at 0.8 (per-class F1 0.5). The gate's own floors are
    # for 60 trees on the curated history with held-out seeds (the first training above meets them);
    # on one actor in five of that history, 60 trees measured macro F1 0.92 and friendly fraud's F1
    # 0.65, 20 trees e-commerce alert precision 0.89 (2026-12-04).
    model = pipeline.config.model
    gate = GateConfig(0.8, 0.8, 0.8, 0.5, 0.8, 0.8, replace(model.gate.out_of_profile, events=5000, min_recall=0.8,
                                                           min_precision=0.8))
    config = replace(pipeline.config, models_root=str(models), model=replace(model, num_trees=20, gate=gate))
    until = FILE_MODE_START + timedelta(days=1)  # the history's day
    labels = {r["transaction_id"]: (r["label"], r["pattern"]) for r in with_label(
        retraining_set(spark, config, 1, until)[0]).filter(F.col("transaction_id").isin(*transactions)).collect()}
    raw = yaml.safe_load(pipeline.config_path.read_text())
    raw["models_root"] = str(models)
    raw["spark"]["master"] = CLUSTER
    raw["model"]["num_trees"] = 20
    raw["model"]["gate"] = {**raw["model"]["gate"], **{k: getattr(gate, k) for k in (
        "min_accuracy", "min_weighted_f1", "min_macro_f1", "min_class_f1", "min_sequence_recall", "min_alert_precision")}}
    raw["model"]["gate"]["out_of_profile"].update(events=5000, min_recall=0.8, min_precision=0.8)
    retrain_config = pipeline.root / "retrain.yaml"
    retrain_config.write_text(yaml.safe_dump(raw))
    write_gate_events(config)  # 5,000 events in the copy's registry, in place of the first training's
    started = time.perf_counter()
    result = pipeline.spark_submit("jobs/retrain.py", "--config", str(retrain_config), "--days", "1",
                              "--until", until.isoformat())
    retrain_s = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-3000:]

    live, futures = live_traffic
    summaries = {test_id: future.result(timeout=900) for test_id, future in futures.items()}
    shutil.copytree(models, live.root / "lake" / "models")  # v0001 current, the retrained v0002 challenger
    live.catch_up(spark)
    return live, summaries, {"labels": labels, "seconds": retrain_s}


def alert_history_of_one_actor(pipe, spark) -> None:
    """The alerts the job would have raised on one fraud actor of the history (it went through the
    job before a model existed): its silver rows scored and written as a micro-batch's are."""
    from fraud.alerts import AlertSink
    from fraud.db import make_pool
    from fraud.schemas import SILVER_COLUMNS
    from fraud.registry import Registry
    from fraud.score import ModelHolder, rules_of, score_table
    from fraud.micro_batch import alert_rows_of

    silver_df = lake(spark, pipe, "silver").select(*SILVER_COLUMNS)
    actor = silver_df.filter(F.col("pattern").startswith("fraud_")).orderBy("transaction_id").first()["actor_id"]
    silver = silver_df.filter(F.col("actor_id") == actor).orderBy("event_time").toArrow()
    model = ModelHolder(Registry.for_config(pipe.config)).current()
    rows = alert_rows_of(score_table(silver, model, pipe.config), silver, model, pipe.config.alerts.top_features,
                         rules_of(pipe.config))
    assert rows, f"the model alerts on fraud actor {actor}"
    with make_pool(pipe.config, as_role(pipe.dsn, "stream")) as pool:
        AlertSink(pipe.config, pool).write("e2e-history-alerts", 0, rows)


def lake(spark, pipe, table):
    return spark.read.format("delta").load(pipe.config.table_path(table))


# Per domain, live, with a model trained on three other profiles and the threshold it chose: the
# gate's floors. Measured on the default profile: recall 0.98-1.00, precision 0.94-1.00 (docs/model.md
# "The model": e-commerce precision is below the 0.95 the vocabulary-fed model reached in profile).
FLOOR = 0.90


def test_live_runs_in_profile_and_out_of_profile(scored_live, spark):
    """Live traffic of the simulator's own profile and of the gate's held-out profile (other
    currencies, payment methods, item types, categories and timings), sent at the same time,
    through Kafka and the job: nothing valid is quarantined, fraud is caught in both."""
    live, summaries, _ = scored_live
    assert all(s.errors == 0 for s in summaries.values())
    for test_id, summary in summaries.items():
        result = evaluate_run(live.dsn, test_id)
        print(f"\nE2E live run {test_id}:", json.dumps(result, indent=1))
        assert set(result["domains"]) == {"gaming", "fintech", "ecommerce"}
        for domain, figures in result["domains"].items():
            assert figures["fraud_sequences"] > 20, domain
            assert figures["recall"] >= FLOOR and figures["precision"] >= FLOOR, (test_id, domain, figures)
        silver = lake(spark, live, "silver").filter(F.col("test_id") == test_id)
        assert silver.count() == summary.events_sent, "no valid transaction quarantined"
        gold = lake(spark, live, "gold").filter(F.col("test_id") == test_id)
        assert gold.count() == summary.events_sent
        assert gold.select("model_version").distinct().collect()[0][0] == "v0001"
        # Severity ranks by the money at risk: spread over levels, the top one holding most alerted fraud.
        levels = {level: f for level, f in result["severity"].items() if f["alerts"]}
        assert len(levels) >= 3, (test_id, result["severity"])
        assert result["severity"]["critical"]["share_of_fraud_amount"] > 0.5, (test_id, result["severity"])
    with live.connect() as conn:
        # Each batch's state store size, from its progress report (Dash pipeline page).
        state_rows, state_memory = conn.execute(
            "SELECT max(state_rows), max(state_memory_bytes) FROM batch_metrics").fetchone()
        # Why each alert fired: its top transaction's inputs (fraud.driver_scorer).
        reasons = conn.execute("SELECT top_features FROM alerts").fetchall()
        explain_ms = conn.execute("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (step_ms->>'explain')::float),"
                                  " percentile_cont(0.5) WITHIN GROUP (ORDER BY (step_ms->>'score')::float)"
                                  " FROM batch_metrics WHERE alert_rows > 0").fetchone()
    print(f"\nE2E explain step: median {explain_ms[0]:.1f} ms per batch with alerts (score: {explain_ms[1]:.1f} ms)")
    assert len(reasons) > 100 and all(top for (top,) in reasons)
    model_inputs = {*NUMERIC_FEATURES, *CATEGORICAL_FEATURES}
    assert all(f["feature"] in model_inputs and f["contribution"] > 0 for (top,) in reasons for f in top)
    assert state_rows > 1000 and state_memory > 0
    silver = lake(spark, live, "silver").filter(F.col("test_id") == "e2e-eu")
    flags = {r["f"] for r in silver.select(F.explode("quality_flags").alias("f")).distinct().collect()}
    assert {"payment_method_known", "item_type_known", "cart_categories_known", "transfer_type_known"} <= flags

    shown = subprocess.run([sys.executable, "-m", "fraud.model", "show", "--json", "--config",
                            str(live.config_path)], capture_output=True, text=True, timeout=120, check=True)
    registered = json.loads(shown.stdout)
    assert registered["out_of_profile"]["profile"] == "eu_marketplace"
    assert all(f["recall"] >= FLOOR and f["precision"] >= FLOOR
               for f in registered["out_of_profile"]["by_domain"].values())
    assert 0.3 <= registered["alert_threshold"] <= 0.95


def test_the_stream_scored_the_live_runs_as_mllib_does(scored_live, spark):
    """Gold as the stream wrote it (scored on the driver, ``fraud.driver_scorer``) and the same silver rows
    scored by the registered ``PipelineModel`` in Spark: identical in every column, the probabilities
    to the last bit."""
    from fraud.registry import Registry
    from fraud.schemas import GOLD_COLUMNS, SILVER_COLUMNS
    from fraud.score import ModelHolder, score_silver

    live = scored_live[0]
    model = ModelHolder(Registry.for_config(live.config)).current()
    columns = [F.to_json(c).alias(c) if c == "class_probabilities" else c for c in GOLD_COLUMNS if c != "scored_at"]
    streamed = lake(spark, live, "gold").select(*columns)
    batch = score_silver(lake(spark, live, "silver").select(*SILVER_COLUMNS), model, live.config).select(*columns)
    assert streamed.count() == batch.count() > 10_000
    assert streamed.exceptAll(batch).count() == 0 and batch.exceptAll(streamed).count() == 0
    assert streamed.filter("is_alert").count() > 100


def test_drift_of_the_live_window_against_the_models_training_reference(scored_live, capsys):
    """`python -m fraud.model drift` (in process): the reference training stored with the model, the
    live runs' hour of silver and gold, one PSI per input and for the score, recorded in PostgreSQL."""
    from fraud.schemas import NUMERIC_FEATURES
    from fraud.model.__main__ import main

    live = scored_live[0]
    assert main(["drift", "--json", "--config", str(live.config_path), "--window-minutes", "120"]) == 0
    measured = json.loads(capsys.readouterr().out)
    print(f"\nE2E drift of the live runs (both profiles at once): flagged {measured['flagged']}")
    assert set(measured["psi"]) == {*NUMERIC_FEATURES, "fraud_score"} and measured["rows"] > 10_000
    # The live runs are the default profile and the held-out eu_marketplace, whose inputs are built not
    # to see vocabulary: no input of amounts, carts, addresses or velocity counts drifts past the flag
    # (tests/test_drift.py shows what does: 4.5-5.4 for amounts sent in cents). Timing may, and here
    # does: live mode paces an actor's events on the wall clock, the training history on simulated
    # gaps, and v_secs_since_prev was flagged (PSI above 0.2 in the 2026-12-07 run).
    timing = {"v_secs_since_prev", "f_session_s"}
    assert set(measured["flagged"]) <= timing, measured["psi"]
    assert all(psi < measured["flag_above"] for name, psi in measured["psi"].items() if name not in timing), \
        measured["psi"]
    with live.connect() as conn:
        stored = dict(conn.execute("SELECT feature, psi FROM drift_results").fetchall())
    assert stored == measured["psi"]


def test_a_retrained_challenger_scored_in_shadow_and_compared_with_the_champion(scored_live, spark, capsys):
    """``jobs/retrain.py`` registered the challenger from silver and the analysts' verdicts, without
    promoting it; the job scored every live row with both, alerted with the champion only, and
    ``compare --json`` gives both columns against ground truth and against verdicts."""
    from fraud.labels import record_action
    from fraud.model.__main__ import main
    from fraud.registry import Registry

    live, summaries, retrained = scored_live
    # The verdict overrode the events' own labels: a false positive trains as regular.
    assert retrained["labels"] and all(label == "regular" for label, _ in retrained["labels"].values())
    assert any(pattern.startswith("fraud_") for _, pattern in retrained["labels"].values())
    registry = Registry.for_config(live.config)
    assert (registry.current_version(), registry.challenger_version()) == ("v0001", "v0002")
    assert registry.entry("v0002").metadata["training_data"]["retrain"]["verdicts"] == len(retrained["labels"])
    # Fitted by two executor JVMs, the model and its metadata written from the driver (as on EMR).
    assert registry.entry("v0002").metadata["trained_on"] == {"master": CLUSTER, "executors": 2}
    assert registry.entry("v0001").metadata["trained_on"]["executors"] == 0  # the suite's local[*] session

    gold = lake(spark, live, "gold")
    with live.connect() as conn:
        (alert_id,), = conn.execute("SELECT alert_id FROM alerts ORDER BY alert_id LIMIT 1").fetchall()
        record_action(conn, alert_id, "confirm_fraud", "e2e-analyst")
        versions = {v for (v,) in conn.execute("SELECT DISTINCT model_version FROM alerts")}
        shadow_ms = conn.execute("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (step_ms->>'shadow')::float)"
                                 " FROM batch_metrics").fetchone()[0]
    assert versions == {"v0001"}, "the challenger never alerts"
    assert {r[0] for r in gold.select("model_version").distinct().collect()} == {"v0001"}
    assert main(["compare", "--json", "--config", str(live.config_path)]) == 0
    compared = json.loads(capsys.readouterr().out)
    print(f"\nE2E retrain: {retrained['seconds']:.0f} s, v0002 registered as the challenger")
    print(f"E2E champion and challenger on the live runs (shadow step median {shadow_ms:.0f} ms per batch):",
          json.dumps(compared, indent=1))
    assert (compared["champion"], compared["challenger"]) == ("v0001", "v0002")
    assert compared["rows"] == compared["ground_truth"]["rows"] == gold.count(), "every live row, both models"
    for role in ("champion", "challenger"):
        figures = compared["ground_truth"][role]
        assert figures["accuracy"] > 0.9 and figures["fraud_rows_alerted"] > 0.5 and figures["alerts_on_fraud"] > 0.8
    assert compared["ground_truth"]["champion"]["alerts"] == gold.filter("is_alert").count()
    assert compared["verdicts"]["transactions"] > 0
    assert compared["verdicts"]["champion"]["alerts"] == compared["verdicts"]["transactions"]


def test_stream_and_batch_compute_identical_features(pipeline, spark):
    """The velocity functions give the same values in the stream (state store, shared-attribute rows
    merged on the driver) and in batch: the actor's and what rings share (address, IP, device,
    destination account)."""
    bronze = (lake(spark, pipeline, "bronze")
              .select(F.col("kafka_key").cast("binary").alias("key"), "value", "topic", "partition", "offset",
                      F.col("kafka_timestamp").alias("timestamp")))
    batch = batch_records(bronze, pipeline.config).filter(is_valid())
    features = [*VELOCITY_FEATURES, *SHARED_FEATURES]
    streamed = lake(spark, pipeline, "silver").select("transaction_id", *features)
    assert streamed.count() >= 140_000  # the history
    assert streamed.filter(F.col("s_ip_actors") > 1).count() > 0, "shared values seen by several actors"
    assert_df_equality(batch.select("transaction_id", *features).orderBy("transaction_id"),
                       streamed.orderBy("transaction_id"), ignore_nullable=True)


def bad_records(gaming_event: dict, fintech_event: dict) -> dict[str, bytes]:
    """One real Kafka record per quarantine reason, all sent to the gaming topic."""
    e = dict(gaming_event)
    return {
        "malformed_json": b'{"transaction_id": "x", "domain": ',
        "missing_field:actor_id": json.dumps({k: v for k, v in e.items() if k != "actor_id"}).encode(),
        "bad_type:amount": json.dumps({**e, "amount": "twelve"}).encode(),
        "out_of_range:amount": json.dumps({**e, "amount": -3.5}).encode(),
        "unknown_domain": json.dumps({**e, "domain": "crypto"}).encode(),
        "domain_topic_mismatch": json.dumps(fintech_event).encode(),
        # Over stream.max_record_bytes (16 KiB), under what the topic accepts with its framing.
        "oversize": json.dumps({**e, "padding": "x" * 17_000}).encode(),
    }


def unusual_copies(events: list[dict]) -> list[dict]:
    """Gaming fraud sequences again, as another platform would send them: a currency missing from the
    currency table, a payment method and an item type nobody listed (new actors and ids)."""
    actors = sorted({e["actor_id"] for e in events if e["domain"] == "gaming" and e["is_fraud"]})[:8]
    return [{**e, "actor_id": e["actor_id"] + "-x", "player_id": e["player_id"] + "-x",
             "transaction_id": e["transaction_id"] + "-x", "test_id": "e2e-unusual", "currency": "XBT",
             "payment_method": "steam_wallet", "item_type": "emote"}
            for e in events if e["actor_id"] in actors]


def test_contract_violations_are_quarantined_and_unusual_records_scored_from_real_records(pipeline, spark, tmp_path):
    history = (tmp_path / "h.jsonl")
    options = build_options(pipeline.config, domain="all", load_level=None, rate=None, events=3000, duration=None,
                            fraud_rate=0.5, seed=77, test_id="e2e-quarantine", pattern_weights=None,
                            output=str(history))
    run_simulation(pipeline.config, options)
    events = [json.loads(line) for line in history.read_text().splitlines()]
    gaming = next(e for e in events if e["domain"] == "gaming")
    fintech = {**next(e for e in events if e["domain"] == "fintech"), "transaction_id": "misrouted"}
    structuring = [e for e in events if e["pattern"] == "fraud_structuring"]
    twice = structuring[0]
    unusual = unusual_copies(events)
    # Batches within what the topics accept (fraud.kafka.topic_config), as the simulator sends them.
    producer = Producer({"bootstrap.servers": pipeline.bootstrap, "batch.size": pipeline.config.stream.max_record_bytes})
    topics = pipeline.config.kafka.topics
    for reason, value in bad_records({**gaming, "transaction_id": "bad-one"}, fintech).items():
        producer.produce(topics["gaming"], key=reason.encode(), value=value)
    for event in events + [twice] + unusual:  # the same event delivered twice, like a producer retry
        producer.produce(topics[event["domain"]], key=event["actor_id"].encode(), value=json.dumps(event).encode())
    assert producer.flush(30) == 0
    pipeline.catch_up(spark)

    quarantined = {r["kafka_key"]: r["reasons"] for r in lake(spark, pipeline, "bronze").join(
        lake(spark, pipeline, "quarantine"), ["topic", "partition", "offset"], how="inner").collect()}
    for reason in bad_records(gaming, fintech):
        assert quarantined[reason] == [reason], (reason, quarantined.get(reason))
    silver = lake(spark, pipeline, "silver").filter(F.col("test_id") == "e2e-quarantine")
    assert silver.count() == len(events), "every valid record lands, exactly once"
    assert silver.filter(F.col("transaction_id") == twice["transaction_id"]).count() == 1
    assert [r for k, r in quarantined.items() if k == twice["actor_id"]] == [["duplicate"]]
    with pipeline.connect() as conn:
        hits = conn.execute("SELECT count(*) FROM alert_transactions WHERE transaction_id = %s",
                            (twice["transaction_id"],)).fetchone()[0]
        unusual_alerted = conn.execute("SELECT quality_flags FROM alert_transactions WHERE transaction_id LIKE"
                                       " '%%-x' AND currency = 'XBT'").fetchall()
    assert hits == 1, "one alert row for the duplicated event"

    # Unusual but scorable: every one in gold, with its flags, and able to raise alerts.
    expected_flags = ["currency_known", "payment_method_known", "item_type_known"]
    gold = lake(spark, pipeline, "gold").filter(F.col("test_id") == "e2e-unusual")
    assert sorted(r["transaction_id"] for r in gold.collect()) == sorted(e["transaction_id"] for e in unusual)
    assert {tuple(r["quality_flags"]) for r in gold.select("quality_flags").collect()} == {tuple(expected_flags)}
    assert unusual_alerted and all(flags == expected_flags for (flags,) in unusual_alerted)
    print(f"\nunusual gaming fraud: {len(unusual)} events, {len(unusual_alerted)} alerted")
