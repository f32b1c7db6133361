"""``python -m fraud.quarantine``: what the stream quarantined, and sending records back to be read again.

``summary`` counts the quarantine table's records per reason (``--since`` hours, default 24).
``replay --reason PREFIX`` sends the raw records whose reasons start with ``PREFIX`` (e.g.
``unprocessable:`` for records a sink or an expression refused, ``expectation:`` for records an
expectation set to quarantine refused) back to the topic each came from, with its key: once the
cause is mended (a constraint dropped, a bug fixed, a bound raised), the stream reads them as new
records. ``--dry-run`` counts them only. A record whose actor sent events within the last
``stream.state_ttl_s`` comes back as ``duplicate`` (the velocity state holds its transaction id):
replay after that long.
"""

from __future__ import annotations

from fraud.cli import ArgumentParser, UserError, report, run
from fraud.config import Config, load_config


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud.quarantine", description=__doc__.split("\n\n")[1].replace("``", ""))
    parser.add_argument("command", choices=["summary", "replay"])
    parser.add_argument("--reason", help="replay: the records whose reasons start with this (e.g. unprocessable:)")
    parser.add_argument("--since", type=float, default=24.0, help="hours back from now (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="replay: count the records, send nothing")
    parser.add_argument("--json", action="store_true", help="summary: print JSON instead of text")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.since <= 0:
        raise UserError("--since must be a positive number of hours")
    if args.command == "replay" and not args.reason:
        raise UserError("replay needs --reason PREFIX (e.g. unprocessable:)")
    config = load_config(args.config)

    from fraud.spark import build_session

    spark = build_session(config, app_name="fraud-quarantine")
    spark.sparkContext.setLogLevel("WARN")
    records_df = quarantined(spark, config, args.since)
    if args.command == "summary":
        report([{"reason": reason, "records": count} for reason, count in summary(records_df)], args.json)
        return 0
    records = replayable(records_df, args.reason)
    if not args.dry_run:
        send(config, records)
    print(f"{'would send' if args.dry_run else 'sent'} {len(records):,} record(s) quarantined with a reason"
          f" starting {args.reason!r} in the last {args.since:g} h back to their topics")
    return 0


def quarantined(spark, config: Config, since_hours: float):
    """The quarantine rows of the last ``since_hours``, each with its Kafka key from bronze."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    path = config.table_path("quarantine")
    if not DeltaTable.isDeltaTable(spark, path):
        raise UserError(f"no quarantine table at {path} yet: nothing was quarantined")
    since = F.current_timestamp() - F.make_interval(secs=F.lit(since_hours * 3600))
    keys_df = spark.read.format("delta").load(config.table_path("bronze")).select(
        "topic", "partition", "offset", "kafka_key")
    return (spark.read.format("delta").load(path).filter(F.col("ingest_time") >= since)
            .join(keys_df, ["topic", "partition", "offset"], how="left"))


def summary(records_df) -> list[tuple[str, int]]:
    """(reason, records) by count, largest first (a record with two reasons counts under both)."""
    from pyspark.sql import functions as F

    rows = records_df.select(F.explode("reasons").alias("reason")).groupBy("reason").count().collect()
    return sorted(((r["reason"], r["count"]) for r in rows), key=lambda rc: (-rc[1], rc[0]))


def replayable(records_df, prefix: str) -> list[tuple[str, bytes | None, bytes | None]]:
    """(topic, key, value) of the records with a reason starting ``prefix``, in their Kafka order."""
    from pyspark.sql import functions as F

    chosen_df = records_df.filter(F.exists("reasons", lambda r: r.startswith(prefix)))
    rows = chosen_df.orderBy("topic", "partition", "offset").select("topic", "kafka_key", "value").collect()
    return [(r["topic"], None if r["kafka_key"] is None else r["kafka_key"].encode(), r["value"]) for r in rows]


def send(config: Config, records: list[tuple[str, bytes | None, bytes | None]]) -> None:
    from confluent_kafka import Producer

    from fraud.kafka import client_settings

    failed: list[str] = []
    producer = Producer({**client_settings(config), "enable.idempotence": True, "acks": "all",
                         "batch.size": config.stream.max_record_bytes})
    for topic, key, value in records:
        producer.produce(topic, key=key, value=value,
                         on_delivery=lambda err, _msg: failed.append(str(err)) if err else None)
        producer.poll(0)
    if producer.flush(60) or failed:
        raise UserError(f"{len(failed) or 'some'} record(s) not delivered: {failed[0] if failed else 'timed out'}")


if __name__ == "__main__":
    run(main)
