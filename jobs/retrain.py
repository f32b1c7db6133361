"""spark-submit entry point of scheduled retraining (``fraud.model.training.run_retraining``): silver of
the last days with the analysts' verdicts, the gate, registered as the challenger, never promoted.
Run weekly on a schedule (EMR kind ``retrain``), locally by ``make retrain``.

    .venv/bin/spark-submit jobs/retrain.py --config conf/local.yaml [--days 30] [--until 2026-12-01T00:00:00Z]
"""

from argparse import ArgumentTypeError
from datetime import datetime, timezone

from fraud.cli import ArgumentParser, run
from fraud.config import load_config


def main(argv=None) -> int:
    parser = ArgumentParser(
        prog="retrain.py",
        description="Retrain the model on the last days of silver, analyst verdicts overriding the events' "
        "labels, evaluated on actors held out of it; register it as the challenger if it passes the gate.")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--days", type=int, default=30, help="days of silver to train on (default: %(default)s)")
    parser.add_argument("--until", type=_utc_time, help="end of those days, ISO 8601 (default: now)")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    from fraud.model.training import run_retraining
    from fraud.spark import build_session

    spark = build_session(config, app_name="fraud-retrain")
    spark.sparkContext.setLogLevel("WARN")
    return run_retraining(spark, config, args.days, args.until)


def _utc_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


if __name__ == "__main__":
    run(main)
