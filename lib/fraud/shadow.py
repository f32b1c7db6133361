"""The shadow challenger: a registered version scored beside the current model (the champion) on
every micro-batch, its predictions stored apart and never alerting (``python -m fraud.model
challenger VERSION|none``), and the two compared on the same traffic (``compare``).

Per batch, after its alerts are committed, the challenger scores the same silver rows on the
driver (``fraud.score.score_table``) and one transaction stores

- ``shadow_outcomes``: rows counted by (true class, each model's class, each model's alert); the
  true class is the event's recorded pattern where the simulator recorded one ('unknown' for
  traffic without ground truth);
- ``shadow_alerts``: the rows either model alerts on, with both predictions: the analysts'
  verdicts are on the champion's alerts, and these say what the challenger would have done there.

A replayed batch inserts nothing twice (keys with the query and batch ids, or the transaction).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import psycopg
from psycopg_pool import ConnectionPool

from fraud.db import RetryPolicy
from fraud.rules import RuleBook

UNKNOWN = "unknown"  # no ground truth recorded with the event


def true_classes(gold: pa.Table) -> np.ndarray:
    """The model class each row's recorded pattern stands for (``regular_*`` -> ``regular``), as
    training labels it; ``UNKNOWN`` where the event carries no pattern."""
    pattern = gold.column("pattern").to_numpy(zero_copy_only=False)
    return np.array([UNKNOWN if p is None else p if p.startswith("fraud_") else "regular" for p in pattern],
                    dtype=object)


@dataclass(frozen=True)
class ShadowBatch:
    """One batch scored by both models."""

    champion: pa.Table    # gold as the stream wrote it
    challenger: pa.Table  # the same rows scored by the challenger

    def outcomes(self) -> Counter:
        keys = zip(true_classes(self.champion), *(t.column(c).to_pylist() for t in (self.champion, self.challenger)
                                                for c in ("predicted_class", "is_alert")))
        # (true, champion class, champion alert, challenger class, challenger alert) -> rows
        return Counter(keys)

    def alert_rows(self) -> list[tuple]:
        either = pc.or_(self.champion.column("is_alert"), self.challenger.column("is_alert"))
        ours, theirs = self.champion.filter(either), self.challenger.filter(either)
        return list(zip(*(t.column(c).to_pylist() for t in (ours, theirs)
                          for c in ("predicted_class", "fraud_score", "is_alert")),
                        ours.column("transaction_id").to_pylist()))


class ShadowSink:
    def __init__(self, pool: ConnectionPool, retry: RetryPolicy):
        self.pool = pool
        self.retry = retry

    def write(self, query_id: str, batch_id: int, batch: ShadowBatch) -> None:
        champion = batch.champion.column("model_version")[0].as_py()
        challenger = batch.challenger.column("model_version")[0].as_py()
        now = datetime.now(timezone.utc)
        outcomes = [(query_id, batch_id, now, champion, challenger, true, c_cls, d_cls, c_alert, d_alert, n)
                    for (true, c_cls, c_alert, d_cls, d_alert), n in batch.outcomes().items()]
        alerts = [(tid, challenger, champion, now, c_cls, c_score, c_alert, d_cls, d_score, d_alert)
                  for c_cls, c_score, c_alert, d_cls, d_score, d_alert, tid in batch.alert_rows()]

        def insert(conn: psycopg.Connection) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO shadow_outcomes (query_id, batch_id, scored_at, champion_version, challenger_version,"
                    " true_class, champion_class, challenger_class, champion_alert, challenger_alert, rows)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", outcomes)
                cur.executemany(
                    "INSERT INTO shadow_alerts (transaction_id, challenger_version, champion_version, scored_at,"
                    " champion_class, champion_score, champion_alert, challenger_class, challenger_score,"
                    " challenger_alert) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    alerts)

        self.retry.run(self.pool, insert, f"shadow scores of batch {batch_id}")

    def write_rule_hits(self, batch_id: int, gold: pa.Table, rules: RuleBook) -> None:
        """Every row a typology rule matched (shadowed rules included), with its ground truth where
        recorded and whether it alerted: what ``rule_precision`` measures each rule by."""
        hit = pc.greater(pc.list_value_length(gold.column("rule_hits")), 0)
        rows = gold.filter(pc.fill_null(hit, False))
        if rows.num_rows == 0:
            return
        now = datetime.now(timezone.utc)
        shadowed = {r.name for r in rules.rules if r.shadow}
        hits = [(name, tid, name in shadowed, alerted, true, now)
                for names, tid, alerted, true in zip(rows.column("rule_hits").to_pylist(),
                                                     rows.column("transaction_id").to_pylist(),
                                                     rows.column("is_alert").to_pylist(), true_classes(rows))
                for name in names]

        def insert(conn: psycopg.Connection) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany("INSERT INTO rule_hits (rule, transaction_id, shadow, alerted, true_class, scored_at)"
                                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", hits)

        self.retry.run(self.pool, insert, f"rule hits of batch {batch_id}")


# --- the rules' precision ------------------------------------------------------------------------

_RULE_FIGURES_SQL = """
SELECT h.rule, bool_or(h.shadow) AS shadow, count(*) AS hits, count(*) FILTER (WHERE h.alerted) AS alerted,
       count(*) FILTER (WHERE h.true_class <> %(unknown)s) AS known,
       count(*) FILTER (WHERE h.true_class NOT IN (%(unknown)s, 'regular')) AS known_fraud,
       count(v.label) AS judged, count(*) FILTER (WHERE v.label <> 'regular') AS judged_fraud
FROM rule_hits h LEFT JOIN unnest(%(tids)s::text[], %(labels)s::text[]) AS v(transaction_id, label)
     USING (transaction_id)
GROUP BY h.rule ORDER BY h.rule
"""


def rule_precision(conn: psycopg.Connection) -> list[dict]:
    """Per typology rule: its hits, and its precision by the analysts' verdicts (hits an analyst
    judged, the share confirmed as fraud) and by ground truth where the events recorded it."""
    from fraud.labels import analyst_labels

    labels = {r["transaction_id"]: r["label"] for r in analyst_labels(conn)}
    rows = conn.execute(_RULE_FIGURES_SQL, {"unknown": UNKNOWN, "tids": list(labels),
                                            "labels": list(labels.values())}).fetchall()
    return [{"rule": rule, "shadow": shadow, "hits": hits, "alerted": alerted,
             "judged": judged, "precision_by_verdicts": round(judged_fraud / judged, 4) if judged else None,
             "known": known, "precision_by_truth": round(known_fraud / known, 4) if known else None}
            for rule, shadow, hits, alerted, known, known_fraud, judged, judged_fraud in rows]


# --- comparing --------------------------------------------------------------------------------

_OUTCOMES_SQL = """
SELECT true_class, champion_class, champion_alert, challenger_class, challenger_alert, sum(rows)::bigint,
       min(scored_at), max(scored_at)
FROM shadow_outcomes WHERE champion_version = %s AND challenger_version = %s
GROUP BY 1, 2, 3, 4, 5
"""

_SHADOWED_SQL = """
SELECT transaction_id, champion_class, champion_alert, challenger_class, challenger_alert
FROM shadow_alerts WHERE champion_version = %s AND challenger_version = %s AND transaction_id = ANY(%s)
"""


def scores(rows: list[tuple[str, str, bool, int]]) -> dict:
    """Figures of one model from (true class, predicted class, alerted, rows): event accuracy and
    macro F1 (``fraud.model.evaluation.classification_metrics``, as training reports them), and
    alerting: fraud rows alerted, alerts that were fraud."""
    from fraud.model.evaluation import classification_metrics

    total = sum(n for *_, n in rows)
    if not total:
        return {"rows": 0}
    confusion = Counter()
    for true, predicted, _, n in rows:
        confusion[(true, predicted)] += n
    metrics = classification_metrics(confusion)
    fraud = sum(n for t, _, _, n in rows if t != "regular")
    alerts = sum(n for _, _, a, n in rows if a)
    caught = sum(n for t, _, a, n in rows if a and t != "regular")
    return {
        "rows": total,
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "alerts": alerts,
        "fraud_rows_alerted": round(caught / fraud, 4) if fraud else None,   # recall
        "alerts_on_fraud": round(caught / alerts, 4) if alerts else None,    # precision
    }


def _by_model(rows: list[tuple]) -> dict:
    """``scores`` of each model from rows (true class, champion class, champion alert, challenger
    class, challenger alert, rows, ...)."""
    return {"champion": scores([(r[0], r[1], r[2], r[5]) for r in rows]),
            "challenger": scores([(r[0], r[3], r[4], r[5]) for r in rows])}


def compare(conn: psycopg.Connection, champion: str, challenger: str) -> dict:
    """Both models on the traffic the stream scored with both: against ground truth where the events
    recorded it, against analyst verdicts, and with each other."""
    from fraud.labels import analyst_labels

    outcomes = conn.execute(_OUTCOMES_SQL, (champion, challenger)).fetchall()
    # The label each verdict gives a transaction, as training takes it (the latest verdict wins),
    # with what both models did on that row.
    labels = {r["transaction_id"]: r["label"] for r in analyst_labels(conn)}
    verdicts = [(labels[tid], *done) for tid, *done in
                conn.execute(_SHADOWED_SQL, (champion, challenger, list(labels))).fetchall()]
    total = sum(r[5] for r in outcomes)
    known = [r for r in outcomes if r[0] != UNKNOWN]
    return {
        "champion": champion,
        "challenger": challenger,
        "rows": total,
        "from": min(r[6] for r in outcomes).isoformat() if outcomes else None,
        "to": max(r[7] for r in outcomes).isoformat() if outcomes else None,
        "agreement": {
            "same_class": round(sum(r[5] for r in outcomes if r[1] == r[3]) / total, 4) if total else None,
            "alerts_champion_only": sum(r[5] for r in outcomes if r[2] and not r[4]),
            "alerts_challenger_only": sum(r[5] for r in outcomes if r[4] and not r[2]),
            "alerts_both": sum(r[5] for r in outcomes if r[2] and r[4]),
        },
        "ground_truth": {"rows": sum(r[5] for r in known), **_by_model(known)},
        "verdicts": {"transactions": len(verdicts), **_by_model([(*r, 1) for r in verdicts])},
    }


def compare_with_challenger(conn: psycopg.Connection, champion: str, challenger: str | None) -> dict | None:
    """``compare`` with ``challenger``, else with the last challenger scored beside ``champion``
    (None if there was none)."""
    if challenger is None:
        row = conn.execute("SELECT challenger_version FROM shadow_outcomes WHERE champion_version = %s"
                           " ORDER BY scored_at DESC LIMIT 1", (champion,)).fetchone()
        challenger = row[0] if row else None
    return compare(conn, champion, challenger) if challenger else None
