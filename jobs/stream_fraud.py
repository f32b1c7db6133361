"""spark-submit entry point of the streaming job.

    .venv/bin/spark-submit jobs/stream_fraud.py --config conf/local.yaml [--once]
"""

from fraud.cli import ArgumentParser, run
from fraud.config import load_config


def main(argv=None) -> int:
    parser = ArgumentParser(
        prog="stream_fraud.py",
        description="Kafka -> bronze/silver/gold Delta -> in-process scoring -> alerts in PostgreSQL.",
    )
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--once", action="store_true",
                        help="process everything available, then stop (trigger availableNow)")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    from fraud.db import postgres_dsn, require_schema
    from fraud.spark import build_session
    from fraud.stream import run_stream

    # The job's role cannot migrate (fraud.roles): the admin does, with jobs/migrate.py.
    require_schema(postgres_dsn(config, "stream"))
    spark = build_session(config)
    spark.sparkContext.setLogLevel("WARN")
    run_stream(spark, config, once=args.once)
    return 0


if __name__ == "__main__":
    run(main)
