"""How an alert ranks for analysts: one ladder of fraud-score floors, written once in config
(``alerts.severity``, highest level first) and read from here by everything that names a level: the
scorers (in Spark and on the driver), the alerts' upsert in PostgreSQL, the config check and the
Dash app."""

from __future__ import annotations

import numpy as np

# Highest first; a score under every floor is the last level.
LEVELS = ("critical", "high", "medium", "low")
FLOORED = LEVELS[:-1]
LOWEST = LEVELS[-1]

Ladder = tuple[tuple[str, float], ...]


def ladder(floors: dict[str, float]) -> Ladder:
    """``alerts.severity`` as (level, floor) pairs, highest first."""
    return tuple((level, floors[level]) for level in FLOORED)


def problem(floors: dict[str, float]) -> str | None:
    """What is wrong with a configured ladder, or None."""
    if list(floors) != list(FLOORED):
        return f"needs exactly {', '.join(FLOORED)}, in that order"
    values = list(floors.values())
    if values != sorted(values, reverse=True):
        return f"needs {' >= '.join(FLOORED)}"
    return None


def of_scores(scores: np.ndarray, steps: Ladder) -> np.ndarray:
    """The level of each fraud score (the driver's scorer)."""
    levels = np.full(scores.shape, LOWEST, dtype=object)
    for level, floor in reversed(steps):
        levels = np.where(scores >= floor, level, levels)
    return levels


def column(score, steps: Ladder):
    """The level of a fraud-score column (Spark's scorer)."""
    from pyspark.sql import functions as F

    level = F.lit(LOWEST)
    for name, floor in reversed(steps):
        level = F.when(score >= floor, F.lit(name)).otherwise(level)
    return level


def sql_params(steps: Ladder) -> tuple[list[str], list[float], str]:
    """The ladder as the alerts' upsert takes it: levels and floors as two arrays, and the lowest level
    (``fraud.alerts``: ``coalesce((SELECT level FROM unnest(levels, floors) WHERE score >= floor
    ORDER BY floor DESC LIMIT 1), lowest)``)."""
    return [level for level, _ in steps], [floor for _, floor in steps], LOWEST
