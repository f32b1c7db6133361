"""Row-level expectations as Spark columns: the rows each one fails, and what that makes of a row.

Every batch of the stream checks the event suite's row-level expectations
(``fraud.quality.suites.RowExpectation``) as plain ``Column`` expressions, JVM work only. A row failing
one is flagged (the name joins its ``quality_flags``) or, when the expectation's action is
``quarantine``, gets the reason ``expectation:<name>``. A test checks these columns count exactly
what GX counts.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from fraud.parse import reason_codes
from fraud.quality.suites import BETWEEN, IN_SET, NOT_NULL, RowExpectation, Suite

REASON_PREFIX = "expectation:"


def failing_rows(expectation: RowExpectation) -> Column:
    """The rows an expectation marks unexpected, as a boolean Spark column (never null): of the rows
    its ``where`` selects, those whose value fails the check; a null value fails only ``NOT_NULL``,
    as in GX."""
    e = expectation
    column = F.col(e.column)
    if e.type == NOT_NULL:
        unexpected = column.isNull()
    elif e.type == BETWEEN:
        ok = F.lit(True)
        if e.min_value is not None:
            ok = ok & (column >= e.min_value)
        if e.max_value is not None:
            ok = ok & (column <= e.max_value)
        unexpected = column.isNotNull() & ~ok
    elif e.type == IN_SET:
        unexpected = column.isNotNull() & ~column.isin(*e.value_set)
    else:
        unexpected = column.isNotNull() & ~column.rlike(e.regex)
    if e.where is not None:
        where_column, op, value = e.where
        unexpected = ((F.col(where_column) == value) if op == "==" else (F.col(where_column) != value)) & unexpected
    return F.coalesce(unexpected, F.lit(False))


def row_checks(suite: Suite) -> dict[str, tuple[RowExpectation, Column]]:
    """name -> (expectation, failing-rows column) for the suite's row-level expectations."""
    return {e.name: (e, failing_rows(e)) for e in suite.expectations if isinstance(e, RowExpectation)}


def contract_valid(reasons: Column) -> Column:
    """No parse/contract reason (expectation reasons aside): the rows the event suite applies to."""
    return F.forall(reasons, lambda r: r.startswith(REASON_PREFIX))


def expectation_outcomes(checks: dict[str, tuple[RowExpectation, Column]], quarantined: set[str]) -> tuple[Column, Column]:
    """``reasons`` and ``quality_flags`` of a record frame after the suite's ``checks`` (``row_checks``).

    Rows with a contract reason keep their reasons and get no flags (they were not checked). The
    others get ``expectation:<name>`` reasons for the failed checks named in ``quarantined`` and
    the names of the other failed checks as flags."""
    def failed(names: list[str], prefix: str) -> Column:
        codes = [F.when(checks[n][1], F.lit(prefix + n)) for n in names]
        return reason_codes(codes) if codes else no_codes()

    checked = F.size("reasons") == 0
    to_quarantine = [n for n in checks if n in quarantined]
    to_flag = [n for n in checks if n not in quarantined]
    return (F.when(checked, failed(to_quarantine, REASON_PREFIX)).otherwise(F.col("reasons")).alias("reasons"),
            F.when(checked, failed(to_flag, "")).otherwise(no_codes()).alias("quality_flags"))


def no_codes() -> Column:
    return F.array().cast("array<string>")
