"""``python -m fraud_devstack.jvm_archive``: make the local JVMs' class-data archive (``fraud.jvm``) by
running the pipeline's own code once in a JVM that writes what it loaded as it exits. Setup-time
and local only, hence here with the dev stack: the job's package only maps the archive."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from fraud.jvm import archive_path, launch_options


def make_archive() -> Path:
    """Run the pipeline's steps once in a JVM that writes the archive of what it loaded as it exits."""
    path = archive_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["SPARK_SUBMIT_OPTS"] = (f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} -XX:ArchiveClassesAtExit={path}"
                                       " -Xlog:cds=off -Xlog:cds+dynamic=off")  # thousands of "skipping" lines
    with tempfile.TemporaryDirectory(prefix="fraud-cds-") as tmp:
        _exercise(Path(tmp))
    for stale in path.parent.glob("spark-*.jsa"):  # archives of jar sets no longer installed (a version move)
        if stale != path:
            stale.unlink()
    return path


def _exercise(tmp: Path) -> None:
    """Parse, velocity state (a streaming query on RocksDB), silver, a small forest, Delta writes,
    reads and history: the classes the job, training and the notebooks load."""
    from dataclasses import replace

    from delta.tables import DeltaTable

    from fraud.config import load_config
    from fraud.model.forest import build_pipeline, with_label
    from fraud.parse import kafka_records
    from fraud.pipeline import batch_records, stream_records, to_silver
    from fraud.project import ROOT
    from fraud_simulator.history import simulate_file
    from fraud.spark import build_session

    config = load_config(ROOT / "conf" / "local.yaml", environ={})
    config = replace(config, lake_root=str(tmp / "lake"), checkpoint_root=str(tmp / "checkpoints"), models_root=None)
    spark = build_session(config, app_name="fraud-cds-archive")
    try:
        events = simulate_file(config, tmp / "events.jsonl", profile="default", seed=1, events=2000, test_id="cds")
        records_path = str(tmp / "records")
        kafka_records(spark, config, events.read_text().splitlines()).write.format("delta").save(records_path)
        silver_df = batch_records(spark.read.format("delta").load(records_path), config).transform(to_silver)
        silver_df.write.format("delta").save(config.table_path("silver"))
        DeltaTable.forPath(spark, config.table_path("silver")).history(5).collect()
        silver = spark.read.format("delta").load(config.table_path("silver"))
        small = replace(config.model, num_trees=2, class_weight_power=0.0)
        model = build_pipeline(replace(config, model=small)).fit(with_label(silver))
        model.write().overwrite().save(str(tmp / "model"))
        type(model).load(str(tmp / "model")).transform(silver).count()

        def each_batch(batch_df, batch_id):
            batch_df.localCheckpoint(eager=True).groupBy("topic").count().collect()

        stream = (spark.readStream.format("delta").load(records_path)
                  .transform(stream_records, config))
        (stream.writeStream.foreachBatch(each_batch).trigger(availableNow=True)
         .option("checkpointLocation", str(tmp / "checkpoints" / "cds")).start().awaitTermination())
    finally:
        gateway = spark.sparkContext._gateway
        spark.stop()
        # The JVM writes the archive as it exits, which it does when its stdin closes: wait for it.
        gateway.shutdown()
        gateway.proc.stdin.close()
        gateway.proc.wait(timeout=600)


def main() -> None:
    """``python -m fraud_devstack.jvm_archive``: make the archive unless it exists; print the JVM options that use it
    (``scripts/setup.sh`` writes them into ``.venv/bin/spark-submit``)."""
    if not archive_path().exists():
        print("setup: making the JVM class-data archive (once per set of jars, 1-2 min)", file=sys.stderr)
        make_archive()
    print(launch_options())


if __name__ == "__main__":
    main()
