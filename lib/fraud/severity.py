"""How an alert ranks for analysts: by the money at risk.

A transaction's expected loss is its calibrated fraud probability (``Calibration``: the model's fraud
score mapped to the share of fraud at that score on held-out data) times its amount in US dollars;
an alert's is the sum over its transactions. One ladder of expected-loss floors in dollars, written
once in config (``alerts.severity``, highest level first), is read from here by everything that names
a level: the scorers (in Spark and on the driver), the alerts' upsert in PostgreSQL, the config check
and the Dash app. Being in dollars, the floors cannot collide with the alert threshold, a score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Highest first; an expected loss under every floor is the last level.
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
    if min(values) < 1:
        return (f"floors are dollars of expected loss (e.g. 10000, 1000, 100), not fraud scores: got {min(values)}"
                " (see docs/model.md#severity-the-money-at-risk)")
    return None


def levels_of(losses: np.ndarray, steps: Ladder) -> np.ndarray:
    """The level of each expected loss (the driver's scorer)."""
    levels = np.full(losses.shape, LOWEST, dtype=object)
    for level, floor in reversed(steps):
        levels = np.where(losses >= floor, level, levels)
    return levels


def column(loss, steps: Ladder):
    """The level of an expected-loss column (Spark's scorer)."""
    from pyspark.sql import functions as F

    level = F.lit(LOWEST)
    for name, floor in reversed(steps):
        level = F.when(loss >= floor, F.lit(name)).otherwise(level)
    return level


@dataclass(frozen=True)
class Calibration:
    """Fraud score -> probability that the event is fraud: linear between knots (scores ascending,
    probabilities non-decreasing), flat beyond the ends. Fitted by training on the held-out set
    (``fit``) and registered with the model; without knots, the score itself (a model registered
    before calibration). Computed the same way, operation for operation, on the driver and in Spark."""

    scores: tuple[float, ...] = ()
    probabilities: tuple[float, ...] = ()

    @classmethod
    def of(cls, metadata: dict | None) -> "Calibration":
        knots = (metadata or {}).get("calibration") or {}
        return cls(tuple(knots.get("scores", ())), tuple(knots.get("probabilities", ())))

    def as_metadata(self) -> dict:
        return {"scores": list(self.scores), "probabilities": list(self.probabilities)}

    def _segments(self):
        """(upper score, lower score, lower probability, slope) per segment, then the top flat part."""
        xs, ys = self.scores, self.probabilities
        return [(xs[i + 1], xs[i], ys[i], (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])) for i in range(len(xs) - 1)]

    def probability(self, scores: np.ndarray) -> np.ndarray:
        if not self.scores:
            return scores
        out = np.full(scores.shape, self.probabilities[-1])
        for upper, lower, base, slope in reversed(self._segments()):
            out = np.where(scores < upper, (scores - lower) * slope + base, out)
        return np.where(scores < self.scores[0], self.probabilities[0], out)

    def column(self, score):
        from pyspark.sql import functions as F

        if not self.scores:
            return score
        out = F.lit(self.probabilities[-1])
        for upper, lower, base, slope in reversed(self._segments()):
            out = F.when(score < upper, (score - F.lit(lower)) * F.lit(slope) + F.lit(base)).otherwise(out)
        return F.when(score < self.scores[0], F.lit(self.probabilities[0])).otherwise(out)


def fit(bins: list[tuple[float, int, int]]) -> Calibration:
    """Isotonic regression (pool adjacent violators) of fraud on score over (score, events, fraud
    events) bins in ascending score: each pooled block becomes a knot at its mean score."""
    blocks: list[list[float]] = []  # [sum of scores * events, events, fraud events]
    for score, n, fraud in sorted(bins):
        if n == 0:
            continue
        blocks.append([score * n, n, fraud])
        while len(blocks) > 1 and blocks[-2][2] / blocks[-2][1] >= blocks[-1][2] / blocks[-1][1]:
            top = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], top)]
    if len(blocks) < 2:
        return Calibration()
    return Calibration(tuple(round(b[0] / b[1], 6) for b in blocks), tuple(round(b[2] / b[1], 6) for b in blocks))


def sql_params(steps: Ladder) -> tuple[list[str], list[float], str]:
    """The ladder as the alerts' upsert takes it: levels and floors as two arrays, and the lowest level
    (``fraud.alerts``: ``coalesce((SELECT level FROM unnest(levels, floors) WHERE loss >= floor
    ORDER BY floor DESC LIMIT 1), lowest)``)."""
    return [level for level, _ in steps], [floor for _, floor in steps], LOWEST
