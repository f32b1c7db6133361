"""Named crash points for the chaos tests: the job SIGKILLs its own process group there.

``FRAUD_FAULT=<point>@<batch id>`` (e.g. ``after_bronze@2``) kills the whole job, the JVM
included, the moment micro-batch 2 reaches that point, as a lost node would. The points are
the windows of the exactly-once protocol (DESIGN §8), in the order a batch passes them:

- ``in_pg_transaction``: alerts and ``sink_progress`` written, the transaction not committed;
- ``after_pg_commit``: PostgreSQL committed, no Delta table written;
- ``after_bronze``: bronze committed (silver, gold may be in flight);
- ``before_checkpoint_commit``: every sink done, Spark's commit log not written.

Unset (production): one environment lookup per point.
"""

from __future__ import annotations

import os
import signal

POINTS = ("in_pg_transaction", "after_pg_commit", "after_bronze", "before_checkpoint_commit")
ENV = "FRAUD_FAULT"


def crash_point(point: str, batch_id: int) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, batch = spec.partition("@")
    if name == point and batch.isdigit() and int(batch) == batch_id:
        os.killpg(os.getpgrp(), signal.SIGKILL)
