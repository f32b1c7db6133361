"""Idempotent Delta appends (fraud.lake): replayed batches are not appended twice, on real Delta tables; the lake
writer (fraud.lake_writer) appends the batches of a commit interval together."""

import dataclasses
import json
import subprocess
import sys

import pytest
from fraud.lake import IdempotentAppender, commit_marker, parse_marker, stream_commits
from fraud.parse import kafka_records
from fraud.pipeline import batch_records
from fraud.project import ROOT
from pipeline_support import real_batch_writer


def appender(spark, config, tmp_path):
    return IdempotentAppender(spark, dataclasses.replace(config, lake_root=str(tmp_path / "lake")))


def rows(spark, n, start=0):
    return spark.createDataFrame([(i, "gaming") for i in range(start, start + n)], "id long, domain string")


def count(spark, lake):
    return spark.read.format("delta").load(lake.config.table_path("silver")).count()


def test_replayed_batches_are_skipped_after_a_restart(spark, config, tmp_path):
    first = appender(spark, config, tmp_path)
    assert first.append(rows(spark, 3), "silver", "q1", 0, ["domain"], 3)
    assert first.append(rows(spark, 2, 3), "silver", "q1", 1, ["domain"], 2)
    # A new process (fresh appender) replays batches 0 and 1 from their stages after a crash (the lake
    # writer runs behind the stream): the table already has both.
    restarted = appender(spark, config, tmp_path)
    assert not restarted.append(rows(spark, 3), "silver", "q1", 0, ["domain"], 3)
    assert not restarted.append(rows(spark, 2, 3), "silver", "q1", 1, ["domain"], 2)
    assert restarted.append(rows(spark, 4, 5), "silver", "q1", 2, ["domain"], 4)
    assert count(spark, restarted) == 9


def test_the_newest_batch_is_the_querys_own_past_other_writers(spark, config, tmp_path):
    lake = appender(spark, config, tmp_path)
    path = lake.config.table_path("silver")
    lake.append(rows(spark, 1), "silver", "q1", 4, ["domain"], 1)
    rows(spark, 1, 10).write.format("delta").mode("append").save(path)  # someone else's commit, no marker
    lake.append(rows(spark, 1, 20), "silver", "other-query", 5, ["domain"], 1)
    assert IdempotentAppender.newest_batch(path, "q1") == 4, "another query's batch 5 is not ours"
    assert IdempotentAppender.newest_batch(path, "other-query") == 5
    assert IdempotentAppender.newest_batch(path, "q3") == -1
    assert IdempotentAppender.newest_batch(str(tmp_path / "no-table"), "q1") == -1


def test_markers_round_trip_and_foreign_metadata_is_not_a_marker():
    assert parse_marker(commit_marker("q", 7)) == {"query_id": "q", "batch_id": 7}
    for foreign in (None, "", "nightly compaction", "[1, 2]", '{"query_id": 3, "batch_id": 1}'):
        assert parse_marker(foreign) is None


def test_markers_are_read_from_the_log_newest_first_past_a_log_checkpoint(spark, config, tmp_path):
    """The markers come from the commit files, newest first, ``limit`` of them, also once Delta has
    written a log checkpoint (a Parquet file that carries no commit info) among them."""
    lake = appender(spark, config, tmp_path)
    path = lake.config.table_path("silver")
    lake.append(rows(spark, 1), "silver", "q1", 0, ["domain"], 1)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '2')")
    for batch_id in range(1, 6):
        lake.append(rows(spark, 1, batch_id), "silver", "q1", batch_id, ["domain"], 1)
    assert list((tmp_path / "lake" / "silver" / "_delta_log").glob("*.checkpoint.parquet"))
    assert [m["batch_id"] for m in stream_commits(path)] == [5, 4, 3, 2, 1, 0]
    assert [m["batch_id"] for m in stream_commits(path, limit=6)] == [5, 4, 3, 2, 1]  # one commit set a property
    assert stream_commits(str(tmp_path / "no-table")) == []


@pytest.mark.integration
def test_batches_within_the_commit_interval_reach_each_table_in_one_commit(spark, config, stack, tmp_path):
    """Three micro-batches inside ``lake_commit_interval_s``: no table has them until the group is due
    (here: a flush), then each table has all three in one commit marked with the newest. Spark running
    batch 2 again, then batch 3, in one group: only batch 3 is appended."""
    events = [json.loads(line) for line in simulated(tmp_path, 40).read_text().splitlines()]
    cfg = dataclasses.replace(config, stream=dataclasses.replace(config.stream, lake_commit_interval_s=3600))
    with real_batch_writer(spark, cfg, stack, tmp_path) as (alert_path, _, cfg):
        def run(batch_id: int) -> None:
            chunk = events[batch_id * 10:(batch_id + 1) * 10]
            alert_path(batch_records(kafka_records(spark, cfg, chunk, first_offset=batch_id * 10), cfg), batch_id)

        for batch_id in range(3):
            run(batch_id)
        tables = {t: cfg.table_path(t) for t in ("bronze", "silver")}
        assert all(not stream_commits(path) for path in tables.values()), "not due: an hour has not passed"
        assert alert_path.lake.stage.batches() == [0, 1, 2]
        alert_path.lake.flush()
        for table, path in tables.items():
            assert [m["batch_id"] for m in stream_commits(path)] == [2], f"{table}: one commit, the newest marks it"
        assert batch_counts(spark, tables["bronze"]) == {0: 10, 1: 10, 2: 10}
        assert alert_path.lake.stage.batches() == [], "every stage deleted once the tables hold the batches"

        run(2)  # Spark's replay of batch 2: the tables hold it already
        run(3)
        alert_path.lake.flush()
        for table, path in tables.items():
            assert [m["batch_id"] for m in stream_commits(path)] == [3, 2], table
        assert batch_counts(spark, tables["bronze"]) == {0: 10, 1: 10, 2: 10, 3: 10}, "batch 2 not appended twice"


def simulated(tmp_path, n: int):
    path = tmp_path / "events.jsonl"
    subprocess.run([sys.executable, "-m", "fraud_simulator", "--events", str(n), "--seed", "5", "--output", str(path)],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    return path


def batch_counts(spark, path: str) -> dict[int, int]:
    return {r["batch_id"]: r["count"] for r in spark.read.format("delta").load(path).groupBy("batch_id").count().collect()}
