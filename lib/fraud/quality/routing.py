"""The expectations on the record path: which row fails which expectation, and what that does.

``ExpectationRouting.with_expectation_checks`` is a step of the chain (``fraud.pipeline.with_reasons``):
the event suite's row checks (``fraud.quality.checks``) give every contract-valid row its
``quality_flags``, or ``expectation:<name>`` reasons where ``quality.actions`` says quarantine. Lazy
and JVM only: one projection. What the batch's results are is ``fraud.quality.results``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from fraud.config import QUARANTINE, Config, ConfigError
from fraud.quality.checks import expectation_outcomes, no_codes, row_checks
from fraud.quality.suites import event_suite, with_quality_columns


class ExpectationRouting:
    """The event suite's row checks and each one's action (flag, or quarantine)."""

    def __init__(self, config: Config):
        self.config = config
        self.suite = event_suite(config)
        self.checks = row_checks(self.suite)
        actions = config.quality.actions
        unknown = sorted(set(actions) - set(self.checks))
        if unknown:
            raise ConfigError(f"{config.source_path}: quality.actions.{unknown[0]}: no row-level expectation of"
                              f" that name (see `python -m fraud.quality expectations`)")
        self.quarantined = {name for name, action in actions.items() if action == QUARANTINE}

    @property
    def enabled(self) -> bool:
        return self.config.quality.enabled

    def action(self, name: str) -> str:
        return QUARANTINE if name in self.quarantined else "flag"

    def with_expectation_checks(self, records_df: DataFrame) -> DataFrame:
        """A record frame (``fraud.parse.parse_records``) plus ``quality_flags``: the expectations each
        contract-valid row fails, as flags, or as ``expectation:<name>`` reasons where the action is
        quarantine."""
        if not self.enabled:
            return records_df.select("*", no_codes().alias("quality_flags"))
        reasons, flags = expectation_outcomes(self.checks, self.quarantined)
        return with_quality_columns(records_df, self.config).select(
            *[reasons if c == "reasons" else c for c in records_df.columns], flags)
