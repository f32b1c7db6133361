"""The ground-truth manifest of a run in PostgreSQL: one row per run, one per actor sequence.

Evaluation (recall, precision) joins alerts against these rows, so any run can be
scored later. Sequences are copied in chunks while the run goes on.
"""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg

from fraud_simulator.generator import SequenceRecord

_SEQUENCE_COLUMNS = ("test_id", "actor_id", "domain", "pattern", "is_fraud", "transaction_ids",
                     "first_event_time", "last_event_time")


class Manifest:
    def __init__(self, conn: psycopg.Connection, test_id: str):
        self.conn = conn
        self.test_id = test_id

    def start(self, *, domains: tuple[str, ...], load_level: str | None, rate_per_s: float, seed: int,
              fraud_rate: float | None) -> None:
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO simulation_runs (test_id, started_at, domains, load_level, target_rate_per_s, seed,"
                " fraud_rate) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (self.test_id, datetime.now(timezone.utc), list(domains), load_level, rate_per_s, seed, fraud_rate),
            )

    def add(self, sequences: list[SequenceRecord]) -> None:
        if not sequences:
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            copy_sql = psycopg.sql.SQL("COPY ground_truth_sequences ({}) FROM STDIN").format(
                psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, _SEQUENCE_COLUMNS))
            )
            with cur.copy(copy_sql) as copy:
                for s in sequences:
                    copy.write_row((s.test_id, s.actor_id, s.domain, s.pattern, s.is_fraud, s.transaction_ids,
                                    s.first_event_time, s.last_event_time))

    def finish(self, *, status: str, events_sent: int, errors: int, achieved_rate_per_s: float,
               fraud_share: float, message: str | None = None) -> None:
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE simulation_runs SET finished_at = %s, status = %s, events_sent = %s, errors = %s,"
                " achieved_rate_per_s = %s, fraud_share = %s, message = %s WHERE test_id = %s",
                (datetime.now(timezone.utc), status, events_sent, errors, achieved_rate_per_s, fraud_share,
                 message, self.test_id),
            )
