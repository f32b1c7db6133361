"""Alerts in PostgreSQL: episodes of suspected fraud, upserted exactly once per micro-batch.

An alert is one actor's episode of one fraud type: the model's predicted class, or the type of the
typology rule that raised it (``fraud.rules``); it records what raised it and the rules' reasons, and
ranks by its expected loss in dollars (``fraud.severity``). Gold rows flagged
``is_alert`` join the actor's latest alert of that type when they are within
``alerts.episode_gap_s`` of its last row; otherwise they open a new one whose id is a
hash of (domain, actor, type, first event time), so a replay computes the same ids.

Per batch, one transaction holds: the alert rows, their related transactions, the
recomputed aggregates and the ``sink_progress`` row. A batch whose progress row
exists is skipped whole, which makes replays after a crash harmless. Aggregates are
recomputed from the related transactions, never incremented. The stream never writes
the analyst columns (status, note, who, when).

A row PostgreSQL refuses for its value (``fraud.isolation``) does not fail the batch: the rows
are written in a savepoint, and when it fails, the refused rows are found by bisection (each
probe in a savepoint rolled back), and the rest written. The refused rows' Kafka positions are
kept in the batch's ``sink_progress`` row, so a replay isolates the same records into quarantine.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from fraud.config import Config
from fraud.db import RetryPolicy
from fraud.faults import crash_point
from fraud.isolation import culprits, is_transient
from fraud.severity import ladder, sql_params

log = logging.getLogger(__name__)


@dataclass
class _Episode:
    alert_id: str
    last_seen: datetime
    is_new: bool
    first_row: dict | None = None
    rows: list[dict] = field(default_factory=list)


def alert_id(domain: str, actor_id: str, alert_type: str, episode_start: datetime) -> str:
    key = f"{domain}|{actor_id}|{alert_type}|{episode_start.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# A record's Kafka position (topic, partition, offset): what alert rows carry as ``position``.
Position = tuple[str, int, int]


@dataclass
class AlertBatchResult:
    applied: bool            # False: this batch was already committed earlier (a replay)
    alerts_touched: int
    transactions_added: int
    isolated: dict[Position, str] = field(default_factory=dict)  # refused records and why, replays included


class AlertSink:
    """Writes one micro-batch's alert rows, retrying transient failures (``fraud.db.RetryPolicy``)."""

    def __init__(self, config: Config, pool: ConnectionPool):
        self.config = config
        self.pool = pool
        self.retry = RetryPolicy.of(config)

    def write(self, query_id: str, batch_id: int, rows: list[dict]) -> AlertBatchResult:
        """Bounded retries with exponential backoff; then the error propagates and the batch fails."""
        return self.retry.run(
            self.pool, lambda conn: self._write_once(conn, query_id, batch_id, rows), f"alerts of batch {batch_id}")

    def probe(self, query_id: str, batch_id: int, rows: list[dict]) -> None:
        """Write ``rows`` in a transaction that is rolled back: raises what the write would."""
        with self.pool.connection() as conn:
            self._probe_in(conn, query_id, batch_id, rows)

    def _write_once(self, conn: psycopg.Connection, query_id: str, batch_id: int,
                    rows: list[dict]) -> AlertBatchResult:
        with conn.transaction():
            done = conn.execute("SELECT isolated FROM sink_progress WHERE query_id = %s AND batch_id = %s",
                                (query_id, batch_id)).fetchone()
            if done:
                return AlertBatchResult(False, 0, 0, {(t, p, o): r for t, p, o, r in done[0]})
            isolated: dict[Position, str] = {}
            for _ in range(len(rows) + 1):  # each failed pass isolates one row at least
                kept = [r for r in rows if r["position"] not in isolated]
                try:
                    with conn.transaction():  # a savepoint: a refused value undoes this pass only
                        episodes = self._assign_episodes(conn, kept)
                        added = self._upsert(conn, query_id, batch_id, episodes)
                    break
                except Exception as err:
                    if is_transient(err):
                        raise
                    found = culprits(range(len(kept)), lambda subset: self._probe_in(conn, query_id, batch_id,
                                                                                     [kept[i] for i in subset]))
                    if not found:  # the write failed, yet every probe passed: not a value's fault
                        raise
                    for i, why in found.items():
                        log.warning("batch %d: PostgreSQL refused transaction %.64r (%s): isolated", batch_id,
                                    kept[i]["transaction_id"], why)
                        isolated[kept[i]["position"]] = why
            conn.execute(
                "INSERT INTO sink_progress (query_id, batch_id, alerts_touched, transactions_added, isolated)"
                " VALUES (%s, %s, %s, %s, %s)",
                (query_id, batch_id, len(episodes), added, Jsonb([[*p, r] for p, r in isolated.items()])))
            crash_point("in_pg_transaction", batch_id)
        return AlertBatchResult(True, len(episodes), added, isolated)

    def _probe_in(self, conn: psycopg.Connection, query_id: str, batch_id: int, rows: list[dict]) -> None:
        with conn.transaction():
            self._upsert(conn, query_id, batch_id, self._assign_episodes(conn, rows))
            raise psycopg.Rollback()

    def _assign_episodes(self, conn: psycopg.Connection, rows: list[dict]) -> list[_Episode]:
        keys = sorted({(r["domain"], r["actor_id"], r["alert_type"]) for r in rows})
        latest: dict[tuple, _Episode] = {}
        if keys:
            domains, actors, types = (list(col) for col in zip(*keys))
            for domain, actor, kind, aid, last_seen in conn.execute(
                "SELECT DISTINCT ON (a.domain, a.actor_id, a.alert_type) a.domain, a.actor_id, a.alert_type,"
                " a.alert_id, a.last_seen FROM alerts a"
                " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(domain, actor_id, alert_type)"
                " USING (domain, actor_id, alert_type)"
                " ORDER BY a.domain, a.actor_id, a.alert_type, a.last_seen DESC",
                (domains, actors, types),
            ):
                latest[(domain, actor, kind)] = _Episode(aid, last_seen, is_new=False)
        gap = timedelta(seconds=self.config.alerts.episode_gap_s)
        touched: dict[str, _Episode] = {}
        for row in sorted(rows, key=lambda r: (r["domain"], r["actor_id"], r["alert_type"], r["event_time"],
                                               r["transaction_id"])):
            key = (row["domain"], row["actor_id"], row["alert_type"])
            episode = latest.get(key)
            if episode is None or row["event_time"] - episode.last_seen > gap:
                episode = _Episode(alert_id(*key, row["event_time"]), row["event_time"], True, first_row=row)
                latest[key] = episode
            episode.last_seen = max(episode.last_seen, row["event_time"])
            episode.rows.append(row)
            touched[episode.alert_id] = episode
        return list(touched.values())

    def _upsert(self, conn: psycopg.Connection, query_id: str, batch_id: int, episodes: list[_Episode]) -> int:
        if not episodes:
            return 0
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alerts (alert_id, domain, actor_id, alert_type, episode_start, first_seen, last_seen,"
                " txn_count, total_amount, max_score, severity, class_probabilities, model_version, test_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 0, 0, 'low', '{}', %s, %s)"
                " ON CONFLICT (alert_id) DO UPDATE SET model_version = EXCLUDED.model_version",
                [(e.alert_id, r["domain"], r["actor_id"], r["alert_type"], r["event_time"], r["event_time"],
                  r["event_time"], r["model_version"], r["test_id"])
                 for e in episodes for r in [e.first_row or e.rows[0]]],
            )
            related = [
                (e.alert_id, r["transaction_id"], r["event_time"], r["amount"], r["currency"], r["fraud_score"],
                 r["predicted_class"], Jsonb(r["class_probabilities"]), r["kafka_timestamp"], r["quality_flags"],
                 Jsonb(r.get("top_features", [])), query_id, batch_id, r["raised_by"], Jsonb(r["rule_reasons"]),
                 r["expected_loss_usd"])
                for e in episodes for r in e.rows
            ]
            cur.executemany(
                "INSERT INTO alert_transactions (alert_id, transaction_id, event_time, amount, currency, fraud_score,"
                " predicted_class, class_probabilities, produced_at, quality_flags, top_features, query_id, batch_id,"
                " raised_by, rule_reasons, expected_loss_usd)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                related,
            )
            levels, floors, lowest = sql_params(ladder(self.config.alerts.severity))
            cur.execute(
                "UPDATE alerts a SET txn_count = s.n, total_amount = s.total, first_seen = s.first,"
                " last_seen = s.last, max_score = s.max_score, class_probabilities = s.probabilities,"
                " top_features = s.top_features, expected_loss_usd = s.loss,"
                " severity = coalesce((SELECT l.level FROM unnest(%s::text[], %s::float8[]) AS l(level, floor)"
                "                      WHERE s.loss >= l.floor ORDER BY l.floor DESC LIMIT 1), %s),"
                " raised_by = ARRAY(SELECT DISTINCT unnest(t.raised_by) FROM alert_transactions t"
                "                   WHERE t.alert_id = a.alert_id ORDER BY 1),"
                " rule_reasons = (SELECT coalesce(jsonb_agg(r.reason ORDER BY r.rule), '[]') FROM"
                "                 (SELECT DISTINCT ON (x->>'rule') x->>'rule' AS rule, x AS reason"
                "                  FROM alert_transactions t, jsonb_array_elements(t.rule_reasons) x"
                "                  WHERE t.alert_id = a.alert_id ORDER BY x->>'rule', t.event_time DESC) r),"
                " updated_at = clock_timestamp()"
                " FROM (SELECT alert_id, count(*) AS n, sum(amount) AS total, min(event_time) AS first,"
                "       max(event_time) AS last, max(fraud_score) AS max_score, sum(expected_loss_usd) AS loss,"
                "       (array_agg(class_probabilities ORDER BY fraud_score DESC))[1] AS probabilities,"
                "       (array_agg(top_features ORDER BY fraud_score DESC))[1] AS top_features"
                "       FROM alert_transactions WHERE alert_id = ANY(%s) GROUP BY alert_id) s"
                " WHERE a.alert_id = s.alert_id",
                (levels, floors, lowest, [e.alert_id for e in episodes]),
            )
        return len(related)
