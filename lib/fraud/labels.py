"""Analyst labels: actions on alerts (taken in the Dash app) and the labels they give training.

An action updates the alert's analyst-owned columns (``status``, ``analyst_note``,
``status_by``, ``status_at``; the stream never writes them) and appends one row to
``alert_actions``, in one transaction, so the audit trail and the current state agree.

``analyst_labels`` turns verdicts into per-transaction labels in the model's label
space: ``confirmed_fraud`` -> the alert's type, ``false_positive`` -> ``regular``.
Acknowledged or open alerts carry no verdict and give no label.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from fraud.cli import UserError

# action -> the status it sets (a note leaves the status alone).
ACTIONS = {
    "acknowledge": "acknowledged",
    "confirm_fraud": "confirmed_fraud",
    "false_positive": "false_positive",
    "note": None,
}
MAX_NOTE_CHARS = 2000

_LABELS_SQL = """
SELECT t.transaction_id, a.alert_id, a.domain, a.actor_id, a.alert_type, a.status,
       CASE a.status WHEN 'confirmed_fraud' THEN a.alert_type ELSE 'regular' END AS label,
       a.status_by, a.status_at, t.event_time
FROM alerts a JOIN alert_transactions t USING (alert_id)
WHERE a.status IN ('confirmed_fraud', 'false_positive')
  AND (%(since)s::timestamptz IS NULL OR a.status_at >= %(since)s)
ORDER BY a.status_at, t.event_time
"""


def record_action(conn: psycopg.Connection, alert_id: str, action: str, analyst: str,
                  note: str | None = None) -> dict:
    """Apply one analyst action; returns the alert's analyst columns after it. Raises UserError."""
    if action not in ACTIONS:
        raise UserError(f"unknown action {action!r}: choose one of {', '.join(ACTIONS)}")
    analyst = (analyst or "").strip()
    if not analyst:
        raise UserError("an action needs the analyst's name")
    note = (note or "").strip() or None
    if action == "note" and not note:
        raise UserError("a note action needs a note")
    if note and len(note) > MAX_NOTE_CHARS:
        raise UserError(f"a note is at most {MAX_NOTE_CHARS} characters")
    status = ACTIONS[action]
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE alerts SET status = coalesce(%(status)s, status),"
            " analyst_note = coalesce(%(note)s, analyst_note),"
            " status_by = CASE WHEN %(status)s IS NULL THEN status_by ELSE %(who)s END,"
            " status_at = CASE WHEN %(status)s IS NULL THEN status_at ELSE clock_timestamp() END"
            " WHERE alert_id = %(id)s RETURNING alert_id, status, analyst_note, status_by, status_at",
            {"status": status, "note": note, "who": analyst, "id": alert_id},
        )
        row = cur.fetchone()
        if row is None:
            raise UserError(f"no alert with id {alert_id!r}")
        cur.execute("INSERT INTO alert_actions (alert_id, action, note, actor) VALUES (%s, %s, %s, %s)",
                    (alert_id, action, note, analyst))
    return row


def analyst_labels(conn: psycopg.Connection, since: datetime | None = None) -> list[dict]:
    """Per-transaction labels from analyst verdicts (optionally only verdicts given since ``since``)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LABELS_SQL, {"since": since}).fetchall()
