"""What one micro-batch held: rows per topic and per outcome (reasons, quality flags), counted from
the batch's Arrow rows on the driver, without a Spark job. The metrics and the quality results read it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from fraud.isolation import UNPROCESSABLE


@dataclass(frozen=True)
class BatchCounts:
    """Rows of one micro-batch per topic and per distinct (reasons, quality_flags) pair (``()``: none)."""

    by_topic: dict[str, int]
    by_outcome: dict[tuple[tuple[str, ...], tuple[str, ...]], int]

    @classmethod
    def of(cls, rows: pa.Table) -> "BatchCounts":
        """From the batch's rows as an Arrow table (the stage's copy, in the driver already): no Spark job."""
        by_topic: Counter = Counter()
        by_outcome: Counter = Counter()
        for topic, reasons, flags in zip(*(rows.column(c).to_pylist() for c in ("topic", "reasons", "quality_flags"))):
            by_topic[topic] += 1
            by_outcome[(tuple(reasons or ()), tuple(flags or ()))] += 1
        return cls(dict(by_topic), dict(by_outcome))

    @property
    def total(self) -> int:
        return sum(self.by_topic.values())

    @property
    def valid(self) -> int:
        return sum(n for (reasons, _), n in self.by_outcome.items() if not reasons)

    @property
    def isolated(self) -> int:
        """Rows isolated as unprocessable (``fraud.isolation``)."""
        return sum(n for (reasons, _), n in self.by_outcome.items()
                   if any(r.startswith(UNPROCESSABLE) for r in reasons))

    def by_reason(self) -> dict[str, int]:
        """Rejected rows per reason code (a row with two reasons counts under both)."""
        counts: Counter = Counter()
        for (reasons, _), n in self.by_outcome.items():
            for reason in reasons:
                counts[reason] += n
        return dict(counts)
