"""spark-submit entry point of maintenance (``fraud.maintenance``): each lake table compacted, then
vacuumed; then the expired rows of PostgreSQL's ever-growing tables deleted.

    .venv/bin/spark-submit jobs/maintain_lake.py --config conf/local.yaml

Safe while the stream runs (its appends conflict with neither lake step). Prints one JSON line per
lake table, then one for PostgreSQL.
"""

import json

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import load_config


def main(argv=None) -> int:
    parser = ArgumentParser(
        prog="maintain_lake.py",
        description="Compact the lake's Delta tables (OPTIMIZE), delete the data files no version of "
        "the retention window needs (VACUUM), and delete PostgreSQL's expired metrics and quality results.",
    )
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--retention-hours", type=float, default=None,
                        help="time travel kept (default: the config's maintenance.vacuum_retention_hours)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    retention = config.maintenance.vacuum_retention_hours if args.retention_hours is None else args.retention_hours
    if retention < config.maintenance.vacuum_retention_hours:
        raise UserError(f"--retention-hours {retention:g} is below the configured minimum "
                        f"{config.maintenance.vacuum_retention_hours:g}: readers of older versions would fail")

    from fraud.db import connect, postgres_dsn
    from fraud.maintenance import expire_rows, maintain_lake
    from fraud.spark import build_session

    spark = build_session(config, app_name="fraud-maintain-lake")
    spark.sparkContext.setLogLevel("WARN")
    for report in maintain_lake(spark, config, retention):
        print(json.dumps(report.as_dict()))
    with connect(postgres_dsn(config), autocommit=True) as conn:
        print(json.dumps({"postgres_rows_expired": expire_rows(conn, config.maintenance.postgres_retention_days)}))
    return 0


if __name__ == "__main__":
    run(main)
