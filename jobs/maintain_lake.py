"""spark-submit entry point of maintenance (``fraud.maintenance``): alerts closed long ago moved to
the lake's archive; each lake table compacted, then vacuumed; the expired rows of PostgreSQL's
ever-growing tables deleted; the sizes of what grows recorded (``maintenance_runs``, shown on the
Dash pipeline page).

    .venv/bin/spark-submit jobs/maintain_lake.py --config conf/local.yaml

Safe while the stream runs (its appends conflict with neither lake step). Prints one JSON line per
lake table, then one with the archive, PostgreSQL's expiry and the sizes.
"""

import uuid
from datetime import datetime, timezone

from fraud.cli import ArgumentParser, UserError, report, run
from fraud.config import load_config


def main(argv=None) -> int:
    parser = ArgumentParser(
        prog="maintain_lake.py",
        description="Archive closed alerts to the lake, compact the lake's Delta tables (OPTIMIZE), delete "
        "the data files no version of the retention window needs (VACUUM), and delete PostgreSQL's expired "
        "metrics and quality results.",
    )
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--retention-hours", type=float, default=None,
                        help="time travel kept (default: the config's maintenance.vacuum_retention_hours)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    retention = config.maintenance.vacuum_retention_hours if args.retention_hours is None else args.retention_hours
    if retention < config.maintenance.vacuum_retention_hours:
        raise UserError(f"--retention-hours {retention:g} is below the configured minimum "
                        f"{config.maintenance.vacuum_retention_hours:g}: readers of older versions would fail")

    from fraud.db import connect, postgres_dsn
    from fraud.maintenance import archive_closed_alerts, expire_rows, maintain_lake, record_run, sizes
    from fraud.spark import build_session

    started_at = datetime.now(timezone.utc)
    spark = build_session(config, app_name="fraud-maintain-lake")
    spark.sparkContext.setLogLevel("WARN")
    upkeep = config.maintenance
    with connect(postgres_dsn(config, "batch"), autocommit=True) as conn:
        archived = archive_closed_alerts(spark, conn, config, upkeep.archive_closed_alerts_after_days)
        lake = maintain_lake(spark, config, retention)
        expired = expire_rows(conn, upkeep.postgres_retention_days)
        measured = sizes(conn, config)
        record_run(conn, run_id=f"{started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", started_at=started_at,
                   lake=lake, measured=measured, rows_expired=expired, alerts_archived=archived)
    report({"tables": [table.as_dict() for table in lake], "alerts_archived": archived,
            "postgres_rows_expired": expired} | measured, args.json)
    return 0


if __name__ == "__main__":
    run(main)
