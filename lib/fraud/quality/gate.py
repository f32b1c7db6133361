"""The training-set gate: labelled rows and their class counts against the training suites, before
any fit; ``QualityGateFailed`` (a one-line ``UserError``) when a set, or a batch in a strict
stream, fails its suite."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fraud.cli import UserError
from fraud.config import Config
from fraud.schemas import NUMERIC_FEATURES
from fraud.quality.suites import (CLASSES_SUITE, REQUIRED_CATEGORICAL, TRAINING_SUITE, input_problems,
                                  training_suites)
from fraud.quality.validator import Validator, describe


class QualityGateFailed(UserError):
    """A data set failed its suite where that must stop the work (training; the stream when configured)."""


def gate_training_set(labelled_df: DataFrame, config: Config, classes: list[str]) -> dict:
    """Validate labelled training rows (column ``label``); raise ``QualityGateFailed`` with a
    one-line report when the set fails either suite. Returns the combined summary."""
    rows_suite, counts_suite = training_suites(config, classes)
    validator = Validator([rows_suite, counts_suite], config.quality.data_docs_dir)
    inputs = ["label", *NUMERIC_FEATURES, *REQUIRED_CATEGORICAL]
    rows_df = labelled_df.select(*inputs, (F.col("label") == "regular").cast("double").alias("is_regular")).persist()
    try:
        total = rows_df.count()
        counts_df = rows_df.groupBy("label").agg(F.count(F.lit(1)).alias("rows"))
        run_name = f"training-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
        rows_result = validator.run(TRAINING_SUITE, rows_df, run_name)
        counts_result = validator.run(CLASSES_SUITE, counts_df, run_name)
        summary = {"success": rows_result["success"] and counts_result["success"],
                   "evaluated": rows_result["evaluated"] + counts_result["evaluated"],
                   "failed": rows_result["failed"] + counts_result["failed"], "rows": total}
        if not summary["success"]:
            _name_input_columns(rows_df, summary["failed"])
    finally:
        rows_df.unpersist()
    if not summary["success"]:
        docs = f" (data docs: {config.quality.data_docs_dir}/index.html)" if config.quality.data_docs_dir else ""
        raise QualityGateFailed(f"training set failed data quality, {len(summary['failed'])} of "
                                f"{summary['evaluated']} expectations: {describe(summary)}{docs}")
    return summary


def _name_input_columns(rows_df: DataFrame, failed: list[dict]) -> None:
    """For the SQL expectations over all inputs, which columns are at fault (one aggregation)."""
    wanted = {f["expectation"] for f in failed} & {"model_inputs_not_null", "model_inputs_in_range"}
    if not wanted:
        return
    problems = input_problems()
    row = rows_df.agg(*[F.sum(F.expr(f"CASE WHEN {p} THEN 1 ELSE 0 END")).alias(c) for c, p in problems.items()]
                      ).first()
    bad = {c: row[c] for c in problems if row[c]}
    for f in failed:
        if f["expectation"] in wanted:
            f["unexpected"] = f.get("observed")
            f["examples"] = [{"value": f"{c}: {n} rows"} for c, n in sorted(bad.items(), key=lambda kv: -kv[1])]
            f["observed"] = None
