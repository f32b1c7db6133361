"""``python -m fraud.quality expectations``: the event suite's expectations and what each does to a
failing row (``quality.actions``). ``python -m fraud.quality docs --input events.jsonl``: validate a
simulator file against the event suite and build the data docs (``quality.data_docs_dir``)."""

from __future__ import annotations

import os

from pyspark.sql import DataFrame

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import FLAG, Config, load_config
from fraud.parse import parse_records
from fraud.quality.suites import EVENT_SUITE, event_suite, with_quality_columns
from fraud.quality.validator import Validator, describe


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud.quality",
                            description="expectations: list the event suite's expectations and their action "
                                        "(quality.actions). docs: validate a simulator JSON-lines file against the "
                                        "event suite with Great Expectations and build the data docs "
                                        "(quality.data_docs_dir).")
    parser.add_argument("command", choices=["expectations", "docs"])
    parser.add_argument("--input", help="docs: JSON lines, e.g. from `python -m fraud_simulator --output`")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.command == "expectations":
        return list_expectations(config)
    if not args.input:
        raise UserError("docs needs --input FILE")
    if not os.path.exists(args.input):
        raise UserError(f"no such file: {args.input}")

    from fraud.spark import build_session

    spark = build_session(config, app_name="fraud-quality")
    spark.sparkContext.setLogLevel("WARN")
    from fraud.parse import kafka_records

    with open(args.input) as lines:
        records_df = kafka_records(spark, config, lines.read().splitlines())
    view_df = silver_shaped(records_df, config)
    validator = Validator([event_suite(config)], config.quality.data_docs_dir)
    summary = validator.run(EVENT_SUITE, view_df.drop("cart_items", "extra_fields").persist(), "cli")
    print(f"{EVENT_SUITE}: {'passed' if summary['success'] else 'FAILED: ' + describe(summary)}")
    if config.quality.data_docs_dir:
        print(f"data docs: {config.quality.data_docs_dir}/index.html")
    return 0 if summary["success"] else 1


def silver_shaped(records_df: DataFrame, config: Config) -> DataFrame:
    """Kafka-shaped records -> typed, flattened event columns plus the suite's derived columns."""
    return with_quality_columns(parse_records(records_df, config), config)


def list_expectations(config: Config) -> int:
    """One line per expectation: name, action on a failing row, the column it checks."""
    for expectation in event_suite(config).expectations:
        name = expectation.name
        print(f"{name:32} {config.quality.actions.get(name, FLAG):12} {expectation.column}")
    return 0


if __name__ == "__main__":
    run(main)
