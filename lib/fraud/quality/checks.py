"""Row-level expectations as Spark columns: the rows each one fails, and the stream's reason codes.

Every batch of the stream checks the event suite's row-level expectations (``column_values``
kinds with their ``row_condition``) as plain ``Column`` expressions, JVM work only; a row failing
one gets the reason ``expectation:<name>``. A test checks these columns count exactly what GX counts.
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


def failing_rows(expectation) -> Column | None:
    """The rows a row-level expectation marks unexpected, as a boolean Spark column (never null).

    Same semantics as GX: ``row_condition`` selects the rows checked; except for the
    not-null kind, a null value is not unexpected. None for expectations that are not
    row-level (types, aggregates): GX alone checks those.
    """
    column = F.col(expectation.column) if hasattr(expectation, "column") else None
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
    elif isinstance(expectation, gxe.ExpectColumnValuesToMatchRegex):
        unexpected = column.isNotNull() & ~column.rlike(expectation.regex)
    else:
        return None
    if expectation.row_condition is not None:
        unexpected = _condition(expectation.row_condition) & unexpected
    return F.coalesce(unexpected, F.lit(False))


def row_checks(suite: Suite) -> dict[str, tuple[object, Column]]:
    """name -> (expectation, failing-rows column) for the suite's row-level expectations."""
    checks = {}
    for expectation in suite.expectations:
        unexpected = failing_rows(expectation)
        if unexpected is not None:
            checks[expectation_name(expectation)] = (expectation, unexpected)
    return checks


def contract_valid(reasons: Column) -> Column:
    """No parse/contract reason (expectation reasons aside): the rows the event suite applies to."""
    return F.forall(reasons, lambda r: r.startswith(REASON_PREFIX))


def expectation_reasons(checks: dict[str, tuple[object, Column]]) -> Column:
    """The ``reasons`` column with ``expectation:<name>`` for each of ``checks`` (``row_checks``) a row
    fails, for rows with no parse/contract reason; other rows keep their reasons."""
    failed = reason_codes([F.when(unexpected, F.lit(REASON_PREFIX + name))
                           for name, (_, unexpected) in checks.items()])
    return F.when(F.size("reasons") == 0, failed).otherwise(F.col("reasons")).alias("reasons")
