"""Lake maintenance (fraud.maintenance, jobs/maintain_lake.py) on a real Delta table of many small
appends, as the stream leaves them: fewer files, the same rows, time travel inside the retention."""

import dataclasses
import importlib.util
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql
from pyspark.sql import functions as F

from fraud import maintenance
from fraud.cli import UserError
from fraud.config import PostgresRetention
from fraud.lake import LakeAppender, stream_commits
from fraud.maintenance import EXPIRING_ROWS, data_files_on_disk, expire_rows, maintain_lake, maintain_table
from fraud.project import ROOT

from pipeline_support import create_database

APPENDS = 12


@pytest.fixture
def small_files_lake(spark, config, tmp_path):
    """A config whose lake holds a silver table of ``APPENDS`` one-batch commits over 2 domains x 2 days."""
    lake_config = replace(config, lake_root=str(tmp_path / "lake"))
    appender = LakeAppender(spark, lake_config)
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
    rows_before = sorted(r.transaction_id for r in before.collect())

    [report] = maintain_lake(spark, small_files_lake, retention_hours=168)

    assert report.table == "silver"
    assert report.live_files_before == APPENDS * 4  # a file per partition and append
    assert report.live_files_after == 4  # one per partition
    # Inside the retention nothing is deleted: the compacted files come on top of the small ones.
    assert report.files_on_disk_after == report.files_on_disk_before + report.live_files_after
    after = spark.read.format("delta").load(path)
    assert sorted(r.transaction_id for r in after.collect()) == rows_before
    # A version from before the compaction still reads, from the files VACUUM kept.
    old = spark.read.format("delta").option("versionAsOf", report.version_before).load(path)
    assert sorted(r.transaction_id for r in old.collect()) == rows_before
    # The stream's markers survive: its next append of batch APPENDS - 1 is still seen as done.
    assert stream_commits(path)[0] == {"query_id": "query-1", "batch_id": APPENDS - 1}
    assert LakeAppender.newest_batch(path, "query-1") == APPENDS - 1


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
        deleted = expire_rows(conn, PostgresRetention(batch_metrics=30, quality_results=35))
        assert deleted == {"batch_metrics": 7, "quality_results": 7}
        left = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in EXPIRING_ROWS}
        assert left == {"batch_metrics": 5, "quality_results": 5}
        assert expire_rows(conn, PostgresRetention(batch_metrics=10, quality_results=35)) == {
            "batch_metrics": 2, "quality_results": 0}
