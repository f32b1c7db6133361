"""Drift: how far live traffic has moved from what the current model was trained on.

Per model input and for the fraud score, the population stability index (PSI) of a live window
against the model's training reference:

    PSI = sum over bins of (live share - reference share) * ln(live share / reference share)

The reference is stored with the model version (``reference``, at training): per column the edges
of ten bins at the training rows' deciles (fewer where values repeat: flags have two), the share of
rows in each, and the share of absent values as a bin of its own. A share of 0 counts as
``_FLOOR`` (a bin the window never fills still counts, rather than dividing by zero). By the usual
reading, PSI under 0.1 is no change, 0.1-0.2 a moderate one, above 0.2 (``FLAG``) a shift worth a
look: retraining, or the cause upstream.

``python -m fraud.model drift`` measures the last hour of silver and gold against the current
model's reference, stores the result in PostgreSQL (``drift_results``: the Dash model page) and
prints it; hourly on a schedule (``jobs/drift.py`` on EMR, ``make drift`` locally).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from fraud.config import Config

if TYPE_CHECKING:  # Spark is imported where it is used: the Dash app reads FLAG without it
    from pyspark.sql import Column, DataFrame

BINS = 10
FLAG = 0.2
_FLOOR = 1e-4
SCORE = "fraud_score"


def _bin(column: str, edges: list[float]) -> Column:
    """Bin index of a value: -1 absent, k for the k-th edge it does not exceed, len(edges) above all."""
    from pyspark.sql import functions as F

    value = F.col(column).cast("double")
    index = F.lit(len(edges))
    for k in reversed(range(len(edges))):
        index = F.when(value <= edges[k], F.lit(k)).otherwise(index)
    return F.when(value.isNull() | F.isnan(value), F.lit(-1)).otherwise(index)


def shares(df: DataFrame, edges: dict[str, list[float]]) -> tuple[int, dict[str, list[float]]]:
    """(rows, per column the share of rows in each bin, absent first), in one pass over ``df``."""
    from pyspark.sql import functions as F

    counts = [F.sum(F.when(_bin(c, e) == k, 1).otherwise(0)).alias(f"{c}__{k + 1}")
              for c, e in edges.items() for k in range(-1, len(e) + 1)]
    row = df.agg(F.count(F.lit(1)).alias("__rows"), *counts).first()
    n = row["__rows"]
    return n, {c: [(row[f"{c}__{k + 1}"] or 0) / n if n else 0.0 for k in range(-1, len(e) + 1)]
               for c, e in edges.items()}


def reference(silver_df: DataFrame, scored_df: DataFrame) -> dict:
    """The training reference: model inputs from ``silver_df``, the fraud score from ``scored_df``
    (held-out rows scored by the new model)."""
    from pyspark.sql import functions as F

    from fraud.schemas import NUMERIC_FEATURES

    edges = {}
    for df, columns in ((silver_df, NUMERIC_FEATURES), (scored_df, [SCORE])):
        deciles = df.select(*[F.col(c).cast("double") for c in columns]).approxQuantile(
            columns, [k / BINS for k in range(1, BINS)], 0.001)
        edges.update({c: sorted(set(q)) for c, q in zip(columns, deciles)})
    _, features = shares(silver_df, {c: edges[c] for c in NUMERIC_FEATURES})
    _, score = shares(scored_df, {SCORE: edges[SCORE]})
    return {c: {"edges": edges[c], "shares": s} for c, s in {**features, **score}.items()}


def psi(expected: list[float], actual: list[float]) -> float:
    return sum((max(a, _FLOOR) - max(e, _FLOOR)) * math.log(max(a, _FLOOR) / max(e, _FLOOR))
               for e, a in zip(expected, actual))


@dataclass(frozen=True)
class Drift:
    model_version: str
    window_start: datetime
    window_end: datetime
    rows: int
    psi: dict[str, float]  # column -> PSI (None when the window has no rows)

    @property
    def flagged(self) -> list[str]:
        return sorted(c for c, v in self.psi.items() if v is not None and v > FLAG)

    def as_dict(self) -> dict:
        return {"model_version": self.model_version, "window_start": self.window_start.isoformat(),
                "window_end": self.window_end.isoformat(), "rows": self.rows, "flag_above": FLAG,
                "flagged": self.flagged, "psi": self.psi}


def measure(silver_df: DataFrame, gold_df: DataFrame, ref: dict, model_version: str, start: datetime,
            end: datetime) -> Drift:
    """PSI of every column of the reference over these rows (the window's silver and gold)."""
    feature_edges = {c: r["edges"] for c, r in ref.items() if c != SCORE}
    rows, live = shares(silver_df, feature_edges)
    _, live_score = shares(gold_df, {SCORE: ref[SCORE]["edges"]})
    live.update(live_score)
    values = {c: round(psi(ref[c]["shares"], live[c]), 4) if rows else None for c in ref}
    return Drift(model_version, start, end, rows, values)


def live_window(spark, config: Config, ref: dict, model_version: str, minutes: int,
                now: datetime | None = None) -> Drift:
    """The last ``minutes`` of silver and gold (by event time) against ``ref``."""
    end = now or datetime.now(timezone.utc)
    start = end - timedelta(minutes=minutes)

    from pyspark.sql import functions as F

    def window(table: str) -> DataFrame:
        # The event-date partitions first (pruning), then the exact times.
        return (spark.read.format("delta").load(config.table_path(table))
                .filter(F.col("event_date").between(start.date(), end.date()))
                .filter(F.col("event_time").between(F.lit(start), F.lit(end))))

    return measure(window("silver"), window("gold"), ref, model_version, start, end)


def record(conn, drift: Drift) -> None:
    """One row per column, in one transaction (the Dash model page reads the latest run)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO drift_results (computed_at, model_version, window_start, window_end, rows, feature, psi,"
            " flagged) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(drift.window_end, drift.model_version, drift.window_start, drift.window_end, drift.rows, c, v,
              v is not None and v > FLAG) for c, v in drift.psi.items()])
