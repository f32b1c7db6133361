"""How well a simulator run was caught: alerts in PostgreSQL against its ground-truth manifest.

- **recall** per domain: share of fraud sequences with an alert *of the right type*
  naming at least one of the sequence's transactions;
- **precision** per domain: share of the run's alerts whose type is the pattern of the
  sequence their transactions came from;
- **latency** percentiles: Kafka timestamp of each alerted event -> commit time of the
  PostgreSQL transaction that stored it;
- **severity**: the run's alerts per level, and the fraud they hold: the amount in US dollars of
  their transactions that the ground truth says are fraud, and its share of all such alerted fraud
  (whether the top level holds most of the money at risk).

``python -m fraud.detection --test-id ID [--wait SECONDS] [--json]``
"""

from __future__ import annotations

import json
import time

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import load_config
from fraud.db import connect, postgres_dsn
from fraud.severity import LEVELS

_RECALL_SQL = """
SELECT g.domain, count(*) AS fraud_sequences,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM alert_transactions t JOIN alerts a USING (alert_id)
           WHERE t.transaction_id = ANY (g.transaction_ids) AND a.alert_type = g.pattern)) AS caught
FROM ground_truth_sequences g
WHERE g.test_id = %s AND g.is_fraud
GROUP BY g.domain ORDER BY g.domain
"""

# An alert is correct when its type is the ground-truth pattern of its transactions' sequence.
_PRECISION_SQL = """
WITH alert_truth AS (
    SELECT a.alert_id, a.domain, bool_or(g.pattern = a.alert_type) AS correct
    FROM alerts a
    JOIN alert_transactions t USING (alert_id)
    JOIN ground_truth_sequences g ON g.test_id = a.test_id AND g.actor_id = a.actor_id
                                 AND t.transaction_id = ANY (g.transaction_ids)
    WHERE a.test_id = %s
    GROUP BY a.alert_id, a.domain
)
SELECT domain, count(*) AS alerts, count(*) FILTER (WHERE correct) AS correct
FROM alert_truth GROUP BY domain ORDER BY domain
"""

_LATENCY_SQL = """
SELECT count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms), max(ms)
FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(t.xmin) - t.produced_at) * 1000 AS ms
      FROM alert_transactions t JOIN alerts a USING (alert_id) WHERE a.test_id = %s) AS latencies
"""


_SEVERITY_ALERTS_SQL = "SELECT severity, count(*) FROM alerts WHERE test_id = %s GROUP BY severity"
_SEVERITY_FRAUD_SQL = """
SELECT a.severity, t.currency, sum(t.amount) AS fraud_amount
FROM alerts a
JOIN alert_transactions t USING (alert_id)
JOIN ground_truth_sequences g ON g.test_id = a.test_id AND g.actor_id = a.actor_id
                             AND t.transaction_id = ANY (g.transaction_ids) AND g.is_fraud
WHERE a.test_id = %s
GROUP BY a.severity, t.currency
"""


def severity_figures(alerts: list[tuple], fraud: list[tuple]) -> dict:
    """Per severity level (highest first): alerts, fraud amount in US dollars (at the currency table's
    rates) and its share of the run's alerted fraud, from (severity, alerts) and (severity, currency,
    fraud amount)."""
    from fraud.reference import currencies

    rates = currencies()
    levels = {level: {"alerts": 0, "fraud_amount_usd": 0.0} for level in LEVELS}
    for severity, count in alerts:
        levels[severity]["alerts"] = count
    for severity, currency, amount in fraud:
        rate = rates[currency].per_usd if currency in rates else 1.0
        levels[severity]["fraud_amount_usd"] += float(amount) / rate
    total = sum(f["fraud_amount_usd"] for f in levels.values())
    for figures in levels.values():
        figures["fraud_amount_usd"] = round(figures["fraud_amount_usd"], 2)
        figures["share_of_fraud_amount"] = round(figures["fraud_amount_usd"] / total, 4) if total else None
    return levels


def run_processed(dsn: str, test_id: str) -> bool:
    """Whether the job has processed a simulator run: its last batch saw no Kafka lag, and the batches
    finished since the run started hold at least the run's events (a lag of 0 alone can be read from
    a batch planned before the run's last events arrived)."""
    with connect(dsn) as conn:
        caught_up = conn.execute("SELECT kafka_lag = 0 FROM batch_metrics ORDER BY finished_at DESC LIMIT 1").fetchone()
        counts = conn.execute(
            "SELECT (SELECT coalesce(sum(input_rows), 0) FROM batch_metrics WHERE finished_at > r.started_at),"
            " r.events_sent FROM simulation_runs r WHERE r.test_id = %s", (test_id,)).fetchone()
    return caught_up == (True,) and counts is not None and counts[0] >= counts[1]


def wait_until_processed(dsn: str, test_id: str, timeout_s: float, poll_s: float = 1.0) -> None:
    """Wait until the job has processed a simulator run (``run_processed``); a user error if it has
    not within ``timeout_s``."""
    start = time.monotonic()
    while not run_processed(dsn, test_id):
        if time.monotonic() - start >= timeout_s:
            raise UserError(f"the streaming job has not processed run {test_id!r} within {timeout_s:g} s "
                            "(is the job running, and was the run sent?)")
        time.sleep(poll_s)


def evaluate_run(dsn: str, test_id: str) -> dict:
    with connect(dsn) as conn:
        run_row = conn.execute("SELECT status, events_sent, achieved_rate_per_s FROM simulation_runs"
                               " WHERE test_id = %s", (test_id,)).fetchone()
        if run_row is None:
            raise UserError(f"no simulator run with test id {test_id!r}")
        recall = conn.execute(_RECALL_SQL, (test_id,)).fetchall()
        precision = conn.execute(_PRECISION_SQL, (test_id,)).fetchall()
        count, quantiles, worst = conn.execute(_LATENCY_SQL, (test_id,)).fetchone()
        severity = severity_figures(conn.execute(_SEVERITY_ALERTS_SQL, (test_id,)).fetchall(),
                                    conn.execute(_SEVERITY_FRAUD_SQL, (test_id,)).fetchall())
    domains: dict[str, dict] = {}
    for domain, sequences, caught in recall:
        domains.setdefault(domain, {}).update(
            fraud_sequences=sequences, caught=caught, recall=round(caught / sequences, 4) if sequences else None)
    for domain, alerts, correct in precision:
        domains.setdefault(domain, {}).update(
            alerts=alerts, correct_alerts=correct, precision=round(correct / alerts, 4) if alerts else None)
    total_seq = sum(d.get("fraud_sequences", 0) for d in domains.values())
    total_caught = sum(d.get("caught", 0) for d in domains.values())
    total_alerts = sum(d.get("alerts", 0) for d in domains.values())
    total_correct = sum(d.get("correct_alerts", 0) for d in domains.values())
    p50, p95, p99 = quantiles or (None, None, None)
    return {
        "test_id": test_id,
        "run": {"status": run_row[0], "events_sent": run_row[1], "achieved_rate_per_s": run_row[2]},
        "domains": domains,
        "recall": round(total_caught / total_seq, 4) if total_seq else None,
        "precision": round(total_correct / total_alerts, 4) if total_alerts else None,
        "latency_ms": {"alerted_events": count, "p50": _ms(p50), "p95": _ms(p95), "p99": _ms(p99), "max": _ms(worst)},
        "severity": severity,
    }


def _ms(value) -> float | None:
    return None if value is None else round(float(value), 1)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud.detection",
                            description="Recall, precision and detection latency of one simulator run.")
    parser.add_argument("--test-id", required=True, help="the simulator run to evaluate")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the streaming job to process the run")
    args = parser.parse_args(argv)
    if args.wait < 0:
        parser.error("--wait must be 0 or more")
    dsn = postgres_dsn(load_config(args.config), "batch")
    if args.wait:
        wait_until_processed(dsn, args.test_id, args.wait)
    result = evaluate_run(dsn, args.test_id)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for domain, d in sorted(result["domains"].items()):
            print(f"{domain:10} recall {d.get('recall')} ({d.get('caught', 0)}/{d.get('fraud_sequences', 0)})"
                  f"  precision {d.get('precision')} ({d.get('correct_alerts', 0)}/{d.get('alerts', 0)})")
        print(f"latency ms {result['latency_ms']}")
        print("severity: " + ", ".join(
            f"{level} {f['alerts']} alerts ({f['share_of_fraud_amount'] or 0:.1%} of the alerted fraud amount)"
            for level, f in result["severity"].items()))
    return 0


if __name__ == "__main__":
    run(main)
