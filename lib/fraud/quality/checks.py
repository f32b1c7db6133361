"""Row-level expectations as Spark columns: the rows each one fails, and what that makes of a row.

Every batch of the stream checks the event suite's row-level expectations (``column_values``
kinds with their ``row_condition``) as plain ``Column`` expressions, JVM work only. A row failing
one is flagged (the name joins its ``quality_flags``) or, when the expectation's action is
``quarantine``, gets the reason ``expectation:<name>``. A test checks these columns count exactly
what GX counts.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import AndCondition, ComparisonCondition, NullityCondition

from fraud.parse import reason_codes
from fraud.quality.suites import Suite, expectation_name

REASON_PREFIX = "expectation:"


def _condition(condition) -> Column:
    """A GX row condition (the Condition objects of GX 1.x) as a Spark column."""
    if isinstance(condition, AndCondition):
        return reduce(lambda a, b: a & b, [_condition(c) for c in condition.conditions])
    if isinstance(condition, NullityCondition):
        column = F.col(condition.column.name)
        return column.isNull() if condition.is_null else column.isNotNull()
    if isinstance(condition, ComparisonCondition):
        column, value, op = F.col(condition.column.name), condition.parameter, str(condition.operator)
        ops = {"==": column == value, "!=": column != value, "<": column < value, "<=": column <= value,
               ">": column > value, ">=": column >= value}
        if op in ops:
            return ops[op]
        return column.isin(*value) if op == "IN" else ~column.isin(*value)
    raise TypeError(f"row condition {condition!r} has no Spark translation")


# The row-level kinds: each marks single rows unexpected (types and aggregates are GX's alone).
ROW_LEVEL = (gxe.ExpectColumnValuesToNotBeNull, gxe.ExpectColumnValuesToBeBetween, gxe.ExpectColumnValuesToBeInSet,
             gxe.ExpectColumnValuesToMatchRegex)


def failing_rows(expectation) -> Column:
    """The rows a row-level expectation (``ROW_LEVEL``) marks unexpected, as a boolean Spark column
    (never null).

    Same semantics as GX: ``row_condition`` selects the rows checked; except for the
    not-null kind, a null value is not unexpected.
    """
    column = F.col(expectation.column)
    if isinstance(expectation, gxe.ExpectColumnValuesToNotBeNull):
        unexpected = column.isNull()
    elif isinstance(expectation, gxe.ExpectColumnValuesToBeBetween):
        ok = F.lit(True)
        if expectation.min_value is not None:
            ok = ok & ((column > expectation.min_value) if expectation.strict_min else (column >= expectation.min_value))
        if expectation.max_value is not None:
            ok = ok & ((column < expectation.max_value) if expectation.strict_max else (column <= expectation.max_value))
        unexpected = column.isNotNull() & ~ok
    elif isinstance(expectation, gxe.ExpectColumnValuesToBeInSet):
        unexpected = column.isNotNull() & ~column.isin(*expectation.value_set)
    else:
        unexpected = column.isNotNull() & ~column.rlike(expectation.regex)
    if expectation.row_condition is not None:
        unexpected = _condition(expectation.row_condition) & unexpected
    return F.coalesce(unexpected, F.lit(False))


def row_checks(suite: Suite) -> dict[str, tuple[object, Column]]:
    """name -> (expectation, failing-rows column) for the suite's row-level expectations."""
    return {expectation_name(e): (e, failing_rows(e)) for e in suite.expectations if isinstance(e, ROW_LEVEL)}


def contract_valid(reasons: Column) -> Column:
    """No parse/contract reason (expectation reasons aside): the rows the event suite applies to."""
    return F.forall(reasons, lambda r: r.startswith(REASON_PREFIX))


def expectation_outcomes(checks: dict[str, tuple[object, Column]], quarantined: set[str]) -> tuple[Column, Column]:
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
