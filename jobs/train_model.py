"""spark-submit entry point of model training.

    .venv/bin/spark-submit jobs/train_model.py $(.venv/bin/python -m fraud_simulator.history var/history)

(after those runs went through the streaming job; ``--train-test-id`` / ``--eval-test-id`` repeat).
"""

import argparse

from fraud.cli import ArgumentParser, run
from fraud.config import load_config


def main(argv=None) -> int:
    parser = ArgumentParser(
        prog="train_model.py",
        description="Train the 10-class RandomForest on labelled silver (simulated history that went through "
        "the streaming job), choose its alert threshold on runs from other seeds, evaluate it there and on "
        "out-of-profile traffic (model.gate.out_of_profile), register it if it passes the gate.",
    )
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--train-test-id", action="append", required=True,
                        help="simulator run(s) to train on (repeatable)")
    parser.add_argument("--eval-test-id", action="append", required=True,
                        help="held-out simulator run(s) from another seed (repeatable)")
    parser.add_argument("--promote", action=argparse.BooleanOptionalAction, default=None,
                        help="move `current` to the new version (default: only if none is current)")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    from fraud.model.training import run_training
    from fraud.spark import build_session

    spark = build_session(config, app_name="fraud-train")
    spark.sparkContext.setLogLevel("WARN")
    return run_training(spark, config, args.train_test_id, args.eval_test_id, args.promote)


if __name__ == "__main__":
    run(main)
