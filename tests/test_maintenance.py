"""Lake maintenance (fraud.maintenance, jobs/maintain_lake.py) on a real Delta table of many small
appends, as the stream leaves them: fewer files, the same rows, time travel inside the retention."""

import dataclasses
import importlib.util
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from chispa import assert_df_equality
from psycopg import sql
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud import maintenance
from fraud.cli import UserError
from fraud.config import PostgresRetention
from fraud.lake import IdempotentAppender, stream_commits
from fraud.maintenance import EXPIRING_ROWS, data_files_on_disk, expire_rows, maintain_lake, maintain_table
from fraud.project import ROOT

from pipeline_support import create_database, without_user

APPENDS = 12


@pytest.fixture
def small_files_lake(spark, config, tmp_path):
    """A config whose lake holds a silver table of ``APPENDS`` one-batch commits over 2 domains x 2 days."""
    lake_config = replace(config, lake_root=str(tmp_path / "lake"))
    appender = IdempotentAppender(spark, lake_config)
    for batch in range(APPENDS):
        df = (spark.range(batch * 10, batch * 10 + 10)
              .select(F.col("id").cast("string").alias("transaction_id"),
                      F.when(F.col("id") % 2 == 0, "gaming").otherwise("fintech").alias("domain"),
                      F.date_add(F.lit("2026-12-01").cast("date"), F.floor(F.col("id") % 4 / 2).cast("int")).alias("event_date")))
        appender.append(df, "silver", "query-1", batch, ["domain", "event_date"], rows=10)
    return lake_config


def test_compaction_leaves_fewer_files_the_same_rows_and_time_travel(spark, small_files_lake):
    path = small_files_lake.table_path("silver")
    before = spark.read.format("delta").load(path)
    rows_before = spark.createDataFrame(before.collect(), before.schema).orderBy("transaction_id").cache()

    [report] = maintain_lake(spark, small_files_lake, retention_hours=168)

    assert report.table == "silver"
    assert report.live_files_before == APPENDS * 4  # a file per partition and append
    assert report.live_files_after == 4  # one per partition
    # Inside the retention nothing is deleted: the compacted files come on top of the small ones.
    assert report.files_on_disk_after == report.files_on_disk_before + report.live_files_after
    after = spark.read.format("delta").load(path)
    assert_df_equality(after.orderBy("transaction_id"), rows_before)
    # A version from before the compaction still reads, from the files VACUUM kept.
    old = spark.read.format("delta").option("versionAsOf", report.version_before).load(path)
    assert_df_equality(old.orderBy("transaction_id"), rows_before)
    # The stream's markers survive: its next append of batch APPENDS - 1 is still seen as done.
    assert stream_commits(path)[0] == {"query_id": "query-1", "batch_id": APPENDS - 1}
    assert IdempotentAppender.newest_batch(path, "query-1") == APPENDS - 1


def test_vacuum_deletes_the_compacted_files_once_outside_the_retention(spark, small_files_lake):
    path = small_files_lake.table_path("silver")
    maintain_table(spark, path, "silver", retention_hours=168)
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        report = maintain_table(spark, path, "silver", retention_hours=0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert report.files_on_disk_before == APPENDS * 4 + 4
    assert report.files_on_disk_after == data_files_on_disk(path) == 4
    assert spark.read.format("delta").load(path).count() == APPENDS * 10


def test_a_lake_without_tables_is_nothing_to_do(spark, config, tmp_path):
    assert maintain_lake(spark, replace(config, lake_root=str(tmp_path / "empty")), retention_hours=168) == []


def test_the_job_refuses_a_retention_below_the_configured_one(config):
    spec = importlib.util.spec_from_file_location("maintain_lake", ROOT / "jobs" / "maintain_lake.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    with pytest.raises(UserError, match="below the configured minimum"):
        job.main(["--retention-hours", "1"])


def test_every_retention_in_config_names_a_dated_table():
    assert [f.name for f in dataclasses.fields(PostgresRetention)] == list(EXPIRING_ROWS)


@pytest.mark.integration
def test_expired_metrics_and_quality_rows_are_deleted_in_chunks_and_recent_ones_kept(stack, unique_name, monkeypatch):
    dsn = create_database(stack["postgres"]["dsn"], unique_name("maint").replace("-", "_"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Per table: 7 rows 40 days old, 2 rows 29 days old, 3 from now (ages in days).
        ages = [40] * 7 + [29] * 2 + [0] * 3
        for batch, age in enumerate(ages):
            conn.execute(
                "INSERT INTO batch_metrics (query_id, batch_id, started_at, finished_at, input_rows, input_rows_by_topic,"
                " bronze_rows, silver_rows, quarantine_rows, quarantine_by_reason, gold_rows, alert_rows, step_ms)"
                " VALUES ('q', %s, now() - make_interval(days => %s), now() - make_interval(days => %s),"
                " 1, '{}', 1, 1, 0, '{}', 1, 0, '{}')", (batch, age, age))
            conn.execute(
                "INSERT INTO quality_results (run_id, batch_id, suite, engine, validated_at, success, expectations,"
                " failed_expectations) VALUES ('q', %s, 'events', 'spark', now() - make_interval(days => %s), true, 1, 0)",
                (batch, age))
        monkeypatch.setattr(maintenance, "_CHUNK_ROWS", 3)  # 7 expired rows: three chunks
        keep = {"drift_results": 90, "shadow_outcomes": 90, "shadow_alerts": 90, "rule_hits": 90}  # no rows in those
        deleted = expire_rows(conn, PostgresRetention(batch_metrics=30, quality_results=35, **keep))
        assert deleted == {"batch_metrics": 7, "quality_results": 7, "drift_results": 0, "shadow_outcomes": 0,
                           "shadow_alerts": 0, "rule_hits": 0}
        left = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in EXPIRING_ROWS}
        assert left == {"batch_metrics": 5, "quality_results": 5, "drift_results": 0, "shadow_outcomes": 0,
                        "shadow_alerts": 0, "rule_hits": 0}
        assert expire_rows(conn, PostgresRetention(batch_metrics=10, quality_results=35, **keep)) == {
            "batch_metrics": 2, "quality_results": 0, "drift_results": 0, "shadow_outcomes": 0, "shadow_alerts": 0,
            "rule_hits": 0}


@pytest.mark.integration
def test_closed_alerts_move_to_the_lake_archive_once_with_their_transactions_and_actions(
        spark, config, stack, unique_name, tmp_path, monkeypatch):
    from dash_support import _alert
    from fraud.labels import record_action

    dsn = create_database(stack["postgres"]["dsn"], unique_name("archive").replace("-", "_"))
    lake_config = replace(config, lake_root=str(tmp_path / "lake"))
    path = lake_config.table_path(maintenance.ARCHIVE_TABLE)
    now = datetime.now(timezone.utc)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Every PostgreSQL column of an alert, its transactions and its actions has a field in the archive.
        archive_fields = set(T._parse_datatype_string(f"struct<{maintenance.ARCHIVE_SCHEMA}>").fieldNames())
        columns = {t: {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (t,))}
            for t in ("alerts", "alert_transactions", "alert_actions")}
        assert columns["alerts"] <= archive_fields
        nested = T._parse_datatype_string(f"struct<{maintenance.ARCHIVE_SCHEMA}>")
        assert columns["alert_transactions"] - {"alert_id"} <= set(nested["transactions"].dataType.elementType.fieldNames())
        assert columns["alert_actions"] - {"alert_id"} <= set(nested["actions"].dataType.elementType.fieldNames())

        def alert(verdict, days_ago, n_txns):
            alert_id = _alert(conn, domain="fintech", actor=f"a-{verdict}-{days_ago}", alert_type="fraud_structuring",
                              severity="high", score=0.9, status="open", seen=now - timedelta(days=days_ago + 1),
                              n_txns=n_txns)
            if verdict:
                record_action(conn, alert_id, "note", "ana", "looked at it")
                record_action(conn, alert_id, verdict, "ana")
                conn.execute("UPDATE alerts SET status_at = now() - make_interval(days => %s) WHERE alert_id = %s",
                             (days_ago, alert_id))
            return alert_id

        confirmed = alert("confirm_fraud", 100, 3)
        false_positive = alert("false_positive", 95, 2)
        recent = alert("confirm_fraud", 10, 1)
        still_open = alert(None, 200, 1)
        monkeypatch.setattr(maintenance, "_ARCHIVE_CHUNK_ALERTS", 1)  # two chunks, two MERGE commits
        assert maintenance.archive_closed_alerts(spark, conn, lake_config, after_days=90) == 2

        left = {r[0] for r in conn.execute("SELECT alert_id FROM alerts")}
        assert left == {recent, still_open}
        assert conn.execute("SELECT count(*) FROM alert_transactions WHERE alert_id = ANY(%s)",
                            ([confirmed, false_positive],)).fetchone()[0] == 0
        archived = {r.alert_id: r for r in spark.read.format("delta").load(path).collect()}
        assert set(archived) == {confirmed, false_positive}
        row = archived[confirmed]
        assert (row.status, row.status_by, row.txn_count, len(row.transactions)) == ("confirmed_fraud", "ana", 3, 3)
        assert [a.action for a in row.actions] == ["note", "confirm_fraud"] and row.actions[0].note == "looked at it"
        assert row.class_probabilities["fraud_structuring"] == 0.9
        assert archived[false_positive].status == "false_positive" and len(archived[false_positive].transactions) == 2
        assert row.status_at.replace(tzinfo=timezone.utc) < now - timedelta(days=99)

        # A run that stopped between its MERGE and its DELETE: the alert is still in PostgreSQL
        # (put back here, with a later note). The next run updates its archived row, adds none.
        conn.execute(
            "INSERT INTO alerts (alert_id, domain, actor_id, alert_type, episode_start, first_seen, last_seen,"
            " txn_count, total_amount, max_score, severity, class_probabilities, model_version, status,"
            " analyst_note, status_by, status_at) VALUES (%s, 'fintech', 'x', 'fraud_structuring', now(), now(),"
            " now(), 3, 300, 0.9, 'high', '{}', 'v0001', 'confirmed_fraud', 'second look', 'ana', %s)",
            (confirmed, row.status_at.replace(tzinfo=timezone.utc)))
        assert maintenance.archive_closed_alerts(spark, conn, lake_config, after_days=90) == 1
        archive = spark.read.format("delta").load(path)
        assert archive.count() == 2
        assert archive.filter(F.col("alert_id") == confirmed).first().analyst_note == "second look"
        assert maintenance.archive_closed_alerts(spark, conn, lake_config, after_days=90) == 0


@pytest.mark.integration
def test_the_job_records_what_it_did_and_the_sizes_for_the_dash_page(small_files_lake, stack, unique_name, tmp_path,
                                                                       monkeypatch, capsys):
    dsn = create_database(stack["postgres"]["dsn"], unique_name("upkeep").replace("-", "_"))
    (tmp_path / "checkpoints" / "fraud-stream" / "state" / "0").mkdir(parents=True)
    (tmp_path / "checkpoints" / "fraud-stream" / "state" / "0" / "1.changelog").write_bytes(b"x" * 1000)
    monkeypatch.setenv("FRAUD_POSTGRES_DSN", without_user(dsn))
    monkeypatch.setenv("FRAUD_LAKE_ROOT", small_files_lake.lake_root)
    monkeypatch.setenv("FRAUD_CHECKPOINT_ROOT", str(tmp_path / "checkpoints"))
    spec = importlib.util.spec_from_file_location("maintain_lake", ROOT / "jobs" / "maintain_lake.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)

    assert job.main(["--json"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert [t["table"] for t in printed["tables"]] == ["silver"] and printed["alerts_archived"] == 0
    with psycopg.connect(dsn) as conn:
        lake, checkpoint, state, postgres, archived = conn.execute(
            "SELECT lake, checkpoint_bytes, state_bytes, postgres_bytes, alerts_archived FROM maintenance_runs").fetchone()
    assert lake["silver"]["live_files_after"] == 4 and lake["silver"]["log_bytes"] > 0
    assert checkpoint >= state == 1000
    assert set(postgres) == set(maintenance.POSTGRES_TABLES) and all(b > 0 for b in postgres.values())
    assert archived == 0


def test_vacuum_runs_full_when_the_log_no_longer_holds_every_removal(spark, small_files_lake):
    """LITE finds the removed files in the log since the last vacuum; once Delta's log clean-up has
    deleted early commits (here by hand, below a log checkpoint, as 30 days of log retention would),
    LITE refuses, and the job runs FULL instead of failing."""
    from delta.tables import DeltaTable

    path = small_files_lake.table_path("silver")
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '1')")
    table = DeltaTable.forPath(spark, path)
    table.optimize().executeCompaction()  # removed files to vacuum, and a log checkpoint at this version
    checkpointed = table.history(1).first().version
    log_dir = Path(path) / "_delta_log"
    assert (log_dir / f"{checkpointed:020d}.checkpoint.parquet").exists()
    for commit in sorted(log_dir.glob("*.json"))[:5]:
        assert int(commit.stem) < checkpointed
        commit.unlink()
    # LITE reads the log over the versions whose removed files are old enough to delete; with
    # retention 0, every version (Delta's minimum is 168 hours: its check is off for this).
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        assert maintenance.vacuum(spark, path, retention_hours=0) == "FULL"
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert data_files_on_disk(path) == 4  # the compacted-away small files are gone
    assert spark.read.format("delta").load(path).count() == APPENDS * 10
