"""Idempotent Delta appends (fraud.lake): replayed batches are not appended twice, on real Delta tables."""

import dataclasses

from fraud.lake import IdempotentAppender, commit_marker, parse_marker, stream_commits


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
