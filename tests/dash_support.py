"""Seeded data for the Dash app tests: a fresh database on the test stack and a model registry.

Every value the pages show comes from these rows, so the tests can say exactly what
must appear (and what must not).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from fraud.model_classes import MODEL_CLASSES
from fraud.config import load_config
from fraud.registry import Registry
from pipeline_support import ROOT, create_database, without_user

QUERY_ID = "q-seed"
TOP_FEATURES = [{"feature": "v_count", "value": 12.0, "contribution": 0.41},
                {"feature": "v_distinct_devices", "value": 4.0, "contribution": 0.17},
                {"feature": "domain", "value": "gaming", "contribution": 0.02}]
SEED_RUN = "seed-run-1"


@dataclass
class Seeded:
    dsn: str
    environ: dict[str, str]
    lake: Path
    gaming: str          # critical, open, 3 related transactions, actor also has an older alert
    gaming_old: str      # same actor, two days old (outside the default 1 h range)
    fintech: str         # high, open, 2 related transactions
    ecommerce: str       # medium, acknowledged, 1 related transaction
    events_by_domain: dict[str, int]


def _alert(conn, *, domain, actor, alert_type, severity, score, status, seen, n_txns, test_id=None,
           probabilities=None) -> str:
    alert_id = uuid.uuid4().hex
    probabilities = probabilities or {alert_type: score, "regular": round(1 - score, 3)}
    conn.execute(
        "INSERT INTO alerts (alert_id, domain, actor_id, alert_type, episode_start, first_seen, last_seen, txn_count,"
        " total_amount, max_score, severity, class_probabilities, model_version, test_id, created_at, status)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'v0002', %s, %s, %s)",
        (alert_id, domain, actor, alert_type, seen - timedelta(seconds=30), seen - timedelta(seconds=30), seen,
         n_txns, 100.0 * n_txns, score, severity, Jsonb(probabilities), test_id, seen, status))
    for i in range(n_txns):
        event_time = seen - timedelta(seconds=10 * (n_txns - i))
        conn.execute(
            "INSERT INTO alert_transactions (alert_id, transaction_id, event_time, amount, fraud_score,"
            " predicted_class, class_probabilities, produced_at, query_id, batch_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (alert_id, f"{actor}-t{i}-{alert_id[:6]}", event_time, 100.0, score, alert_type, Jsonb(probabilities),
             datetime.now(timezone.utc) - timedelta(seconds=20), QUERY_ID, i % 2))
    return alert_id


def seed_database(dsn: str) -> dict:
    now = datetime.now(timezone.utc)
    by_topic = {"gaming-events": 600, "fintech-transactions": 300, "ecommerce-orders": 150}
    with psycopg.connect(dsn) as conn:
        for batch_id in range(2):
            conn.execute(
                "INSERT INTO batch_metrics (query_id, batch_id, started_at, finished_at, input_rows,"
                " input_rows_by_topic, bronze_rows, silver_rows, quarantine_rows, quarantine_by_reason, gold_rows,"
                " alert_rows, step_ms, model_version, latency_p50_ms, latency_p95_ms, latency_p99_ms,"
                " latency_max_ms, kafka_lag) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'v0002',"
                " %s, %s, %s, %s, %s)",
                (QUERY_ID, batch_id, now - timedelta(seconds=60 * (2 - batch_id) + 20),
                 now - timedelta(seconds=60 * (2 - batch_id)), sum(by_topic.values()), Jsonb(by_topic),
                 sum(by_topic.values()), 1040, 10, Jsonb({"malformed_json": 7, "missing_field:amount": 3}), 1040, 4,
                 Jsonb({"count": 900.0, "score": 5000.0, "sinks": 9000.0}), 15000.0, 21000.0, 23000.0, 24000.0,
                 40 * batch_id))
            conn.execute("UPDATE batch_metrics SET state_rows = %s, state_memory_bytes = %s WHERE batch_id = %s",
                         (1000 * (batch_id + 1), 8 * 2**20 * (batch_id + 1), batch_id))
        ids = {
            "gaming": _alert(conn, domain="gaming", actor="actor-g1", alert_type="fraud_gold_farming",
                             severity="critical", score=0.95, status="open", seen=now, n_txns=3, test_id=SEED_RUN),
            "gaming_old": _alert(conn, domain="gaming", actor="actor-g1", alert_type="fraud_chargeback_fraud",
                                 severity="high", score=0.8, status="open", seen=now - timedelta(days=2), n_txns=2),
            "fintech": _alert(conn, domain="fintech", actor="actor-f1", alert_type="fraud_structuring",
                              severity="high", score=0.82, status="open", seen=now - timedelta(minutes=1), n_txns=2),
            "ecommerce": _alert(conn, domain="ecommerce", actor="actor-e1", alert_type="fraud_card_testing",
                                severity="medium", score=0.65, status="acknowledged",
                                seen=now - timedelta(minutes=2), n_txns=1),
        }
        # Why the gaming alert fired (fraud.driver_scorer' top features of its top transaction).
        conn.execute("UPDATE alerts SET top_features = %s WHERE alert_id = %s", (Jsonb(TOP_FEATURES), ids["gaming"]))
        gaming_txns = [r[0] for r in conn.execute(
            "SELECT transaction_id FROM alert_transactions WHERE alert_id = %s", (ids["gaming"],))]
        conn.execute(
            "INSERT INTO simulation_runs (test_id, started_at, finished_at, status, domains, load_level,"
            " target_rate_per_s, seed, events_sent, achieved_rate_per_s, fraud_share)"
            " VALUES (%s, %s, %s, 'completed', %s, 'normal', 166.7, 1, 1000, 165.2, 0.1)",
            (SEED_RUN, now - timedelta(minutes=10), now - timedelta(minutes=9), ["gaming"]))
        conn.execute(
            "INSERT INTO ground_truth_sequences VALUES (%s, 'actor-g1', 'gaming', 'fraud_gold_farming', true, %s,"
            " %s, %s), (%s, 'actor-g2', 'gaming', 'fraud_account_takeover', true, %s, %s, %s)",
            (SEED_RUN, gaming_txns, now, now, SEED_RUN, ["missed-1"], now, now))
        conn.execute(
            "INSERT INTO model_versions (version, created_at, metrics, features, training_data, is_current)"
            " VALUES ('v0002', %s, '{}', '[]', '{}', true), ('v0001', %s, '{}', '[]', '{}', false)", (now, now))
    domains = {"gaming": 600, "fintech": 300, "ecommerce": 150}
    return {**ids, "events_by_domain": {d: 2 * n for d, n in domains.items()}}


def seed_registry(lake: Path) -> None:
    """Two versions (v0001, v0002), v0002 current after v0001: metadata only, no Spark model needed."""
    from fraud.model.evaluation import classification_metrics

    registry = Registry(str(lake / "models"))
    for n, version in enumerate(("v0001", "v0002")):
        confusion = {(c, c): 100 + 10 * i for i, c in enumerate(MODEL_CLASSES)}
        confusion[("fraud_friendly_fraud", "regular")] = 7 - 5 * n
        metrics = classification_metrics(confusion)
        metrics["sequence_detection"] = {"recall": 0.98 + 0.01 * n, "fraud_sequences": 100, "caught": 98 + n}
        metrics["feature_importances"] = {"amount": 0.4, "actor_txn_count": 0.3, "session_length_sec": 0.2 - 0.1 * n}
        metrics["out_of_profile"] = {"profile": "eu_marketplace", "seed": 9001, "events": 20000, "macro_f1": 0.97,
                                     "by_domain": {"gaming": {"recall": 0.99, "precision": 0.95 + 0.01 * n}}}
        registry.write_metadata(version, {
            "version": version, "created_at": f"2026-11-2{n}T10:00:00Z", "metrics": metrics, "features": [],
            "alert_threshold": 0.85,
            "classes": list(MODEL_CLASSES), "training_data": {"train": {"test_ids": [f"history-seed{7 + n}"]}},
            "code_revision": "abc123", "params": {}, "training_seconds": 60.0, "model_size_bytes": 1000})
        registry.promote(version)


@pytest.fixture(scope="module")
def seeded(stack, tmp_path_factory) -> Seeded:
    """A fresh, migrated database with the seed rows; a registry; the environment the app runs with."""
    tmp = tmp_path_factory.mktemp("dash")
    dsn = create_database(stack["postgres"]["dsn"], f"dash_{uuid.uuid4().hex[:10]}")
    ids = seed_database(dsn)
    seed_registry(tmp / "lake")
    environ = {**os.environ, "FRAUD_POSTGRES_DSN": without_user(dsn), "FRAUD_LAKE_ROOT": str(tmp / "lake"),
               "FRAUD_CHECKPOINT_ROOT": str(tmp / "checkpoints"), "FRAUD_DASH_RUN_DIR": str(tmp / "runs")}
    return Seeded(dsn=dsn, environ=environ, lake=tmp / "lake", **ids)


def app_config(environ: dict[str, str]):
    return load_config(ROOT / "conf" / "local.yaml", environ)
