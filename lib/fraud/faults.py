"""Named crash points for the chaos tests: the job SIGKILLs its own process group there.

``FRAUD_FAULT=<point>@<batch id>`` (e.g. ``after_bronze@2``) kills the whole job, the JVM
included, the moment micro-batch 2 reaches that point, as a lost node would. The points are
the windows of the exactly-once protocol (docs/design.md §8), in the order a batch passes them:

- ``in_pg_transaction``: alerts and ``sink_progress`` written, the transaction not committed;
- ``after_pg_commit``: PostgreSQL committed, no Delta table written;
- ``before_checkpoint_commit``: the alert path done (alerts, quality results, metrics), the batch
  not yet handed to the lake writer, Spark's commit log not written;
- ``lake_behind``: Spark's commit log holds the batch, no Delta table does (the lake writer,
  which runs behind the stream, had not started it): its stage is all that is left;
- ``after_bronze``: bronze committed by the lake writer (silver, gold may be in flight; Spark may
  have committed the batch or not).

Unset (production): one environment lookup per point.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

POINTS = ("in_pg_transaction", "after_pg_commit", "before_checkpoint_commit", "lake_behind", "after_bronze")
ENV = "FRAUD_FAULT"


def crash_point(point: str, batch_id: int, after: Callable[[], bool] | None = None) -> None:
    """Kill the job here if ``FRAUD_FAULT`` names this point and batch; once ``after()`` holds, when given
    (a window that opens in another thread, such as Spark's commit of the batch)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, batch = spec.partition("@")
    if name == point and batch.isdigit() and int(batch) == batch_id:
        while after is not None and not after():
            time.sleep(0.05)
        os.killpg(os.getpgrp(), signal.SIGKILL)
