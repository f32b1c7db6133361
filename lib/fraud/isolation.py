"""No record stops the stream: which errors are retried, and how the records behind the others are found.

A micro-batch's error is one of two kinds:

- **transient**: a lost connection, a serialization failure, a deadlock, a lock or statement
  timeout, an I/O error. Retried as is (``fraud.db.RetryPolicy``); past the retries the batch fails
  and replays (``fraud.stream`` waits for PostgreSQL).
- **any other**: caused by a value (PostgreSQL ``DataError``, ``ProgramLimitExceeded``, a constraint
  violation; a Delta constraint; Arrow's ``ArrowInvalid``; ANSI arithmetic in a Spark expression)
  or by a defect. Retrying it changes nothing, so the records that cause it are found by bisection
  (``culprits``: try halves of the rows until single rows fail alone) and isolated into quarantine
  as ``unprocessable:<error class>`` (``isolate``), and the rest of the batch goes on.

Each sink isolates what it refuses where it writes (``fraud.alerts``, the stage, ``fraud.lake``);
``fraud.micro_batch.AlertPath`` retries a batch that fails all the same ``stream.max_batch_attempts``
times, then isolates its records with a probe that writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout


UNPROCESSABLE = "unprocessable:"
# The Kafka columns an isolated record keeps (and a quarantine row needs): its raw record.
RAW_COLUMNS = ("key", "value", "topic", "partition", "offset", "kafka_timestamp")

# PostgreSQL errors that are worth a retry: the server or the connection, not a value.
_TRANSIENT_PG = (psycopg.OperationalError, pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
                 pg_errors.LockNotAvailable, pg_errors.QueryCanceled, PoolTimeout)


def is_transient(err: BaseException) -> bool:
    """A lost connection, a serialization failure, a lock or statement timeout, an I/O error: worth a
    retry as it is. ``psycopg.OperationalError`` covers the connection and server-side ones that are
    not a value (``ProgramLimitExceeded`` is one of its subclasses, and a value's fault)."""
    if isinstance(err, pg_errors.ProgramLimitExceeded):
        return False
    return isinstance(err, (*_TRANSIENT_PG, OSError))


def reason(err: BaseException) -> str:
    """``unprocessable:<error class>``: Spark's error class where it has one (``DIVIDE_BY_ZERO``,
    ``DELTA_VIOLATE_CONSTRAINT_WITH_VALUES``), else the exception's class (``ProgramLimitExceeded``,
    ``ArrowInvalid``)."""
    return UNPROCESSABLE + (_error_class(err) or type(err).__name__)


def _error_class(err: BaseException) -> str | None:
    """Spark's error class of a PySpark exception, or of a JVM exception PySpark did not convert."""
    for source in (err, getattr(err, "java_exception", None)):
        for getter in ("getCondition", "getErrorClass"):
            try:
                value = getattr(source, getter)()
            except Exception:  # absent, or a JVM object without it
                continue
            if isinstance(value, str) and value:
                return value
    return None


def culprits(positions: Sequence[int], attempt: Callable[[list[int]], None]) -> dict[int, str]:
    """The positions whose rows make ``attempt`` raise a non-transient error, each with its reason.

    ``attempt(subset)`` must write nothing that stays (a probe). Bisection: a failing set is split in
    halves and each half tried alone, down to single rows. Rows that fail only together (both halves
    pass alone) are all taken. A transient error propagates: the caller's retry decides. No row is
    taken when the attempt fails with no rows at all: the environment fails it (a model pointer that
    names no version, a registry it cannot read), and quarantining every record would hide that."""
    def search(subset: list[int], err: BaseException) -> dict[int, str]:
        if len(subset) == 1:
            return {subset[0]: reason(err)}
        halves = [subset[:len(subset) // 2], subset[len(subset) // 2:]]
        found: dict[int, str] = {}
        for half in halves:
            half_err = _failure(half, attempt)
            if half_err is not None:
                found.update(search(half, half_err))
        return found or {p: reason(err) for p in subset}

    err = _failure(list(positions), attempt)
    if err is None or _failure([], attempt) is not None:
        return {}
    return search(list(positions), err)


def _failure(subset: list[int], attempt: Callable[[list[int]], None]) -> BaseException | None:
    try:
        attempt(subset)
    except Exception as err:
        if is_transient(err):
            raise
        return err
    return None


def isolate(rows: pa.Table, reasons: dict[int, str]) -> pa.Table:
    """``rows`` (a batch's record frame) with the rows at ``reasons``' positions reduced to their raw
    record and that one reason: nothing parsed from them is kept (a column Spark holds never null
    keeps an empty list, or its value), so every sink can store them (a quarantine row is Kafka
    columns and reasons). Row order is kept."""
    if not reasons:
        return rows
    n = rows.num_rows
    mask = pa.array([i in reasons for i in range(n)])
    columns = []
    for field in rows.schema:
        column = rows.column(field.name)
        if field.name == "reasons":
            column = pc.if_else(mask, pa.array([[reasons.get(i, "")] for i in range(n)], field.type), column)
        elif field.name not in RAW_COLUMNS and field.nullable:
            column = pc.if_else(mask, pa.nulls(n, field.type), column)
        elif field.name not in RAW_COLUMNS and pa.types.is_list(field.type):  # never null (quality_flags): empty
            column = pc.if_else(mask, pa.array([[]] * n, field.type), column)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=rows.schema)
