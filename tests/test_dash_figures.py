"""Pure parts of the Dash app: figures and component builders, no database."""

from datetime import datetime, timedelta, timezone

from dash_app import figures, layout

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def test_per_minute_by_domain_one_line_per_domain_in_order():
    rows = [{"minute": T0 + timedelta(minutes=1), "domain": "fintech", "n": 3},
            {"minute": T0, "domain": "fintech", "n": 1},
            {"minute": T0, "domain": "gaming", "n": 2}]
    fig = figures.per_minute_by_domain(rows, "t", "n")
    assert [t.name for t in fig.data] == ["gaming", "fintech"]
    assert list(fig.data[1].y) == [1, 3]  # sorted by minute
    assert figures.per_minute_by_domain([], "t", "n").data == ()


def test_empty_figure_says_why():
    fig = figures.empty("PostgreSQL unavailable")
    assert fig.data == () and fig.layout.annotations[0].text == "PostgreSQL unavailable"


def test_batch_figures_skip_missing_steps_and_sum_reasons():
    batches = [
        {"finished_at": T0, "duration_s": 2.0, "input_rows": 100, "step_ms": {"score": 500.0},
         "quarantine_by_reason": {"malformed_json": 2}, "latency_p50_ms": None, "latency_p95_ms": None,
         "latency_p99_ms": None},
        {"finished_at": T0 + timedelta(seconds=5), "duration_s": 0.0, "input_rows": 0,
         "step_ms": {"score": 100.0, "sinks": 50.0}, "quarantine_by_reason": {"malformed_json": 1, "oversize": 4},
         "latency_p50_ms": 10.0, "latency_p95_ms": 20.0, "latency_p99_ms": 30.0},
    ]
    durations = figures.batch_durations(batches)
    assert {t.name: list(t.y) for t in durations.data} == {"batch": [2.0, 0.0], "score": [0.5, 0.1],
                                                            "sinks": [None, 0.05]}
    assert list(figures.throughput(batches).data[0].y) == [50.0, None]
    layers = {t.name: list(t.y) for t in figures.rows_per_layer(
        [{**b, "bronze_rows": 9, "silver_rows": 7, "quarantine_rows": 2, "gold_rows": 7, "alert_rows": 1,
          "isolated_rows": i} for i, b in enumerate(batches)]).data}
    assert layers["isolated"] == [0, 1] and layers["quarantine"] == [2, 2]
    quarantine = figures.quarantine_reasons(batches)
    assert list(quarantine.data[0].x) == ["oversize", "malformed_json"] and list(quarantine.data[0].y) == [4, 3]
    assert [t.name for t in figures.latency(batches).data] == ["p50", "p95", "p99"]


def test_confusion_matrix_rows_are_truth():
    fig = figures.confusion_matrix({"labels": ["a", "b"], "counts": [[5, 1], [0, 7]]})
    assert list(fig.data[0].y) == ["a", "b"] and list(fig.data[0].z[0]) == [5, 1]
    assert figures.confusion_matrix(None).data == ()


def test_feed_rows_carry_badges_and_links():
    row = {"alert_id": "a1", "last_seen": T0, "domain": "gaming", "alert_type": "fraud_gold_farming",
           "severity": "critical", "status": "open", "max_score": 0.93, "txn_count": 4, "total_amount": 12.5,
           "actor_id": "p1"}
    table = layout.alert_feed([row])
    text = str(table)
    assert "sev-critical" in text and "/alerts/a1" in text and "data-domain='gaming'" in text
    assert "no alerts match" in str(layout.alert_feed([]))


def test_source_down_banner_is_an_alert():
    banner = layout.source_down("PostgreSQL unavailable: refused")
    assert banner.role == "alert" and "PostgreSQL unavailable: refused" in str(banner)


def test_why_an_alert_fired_in_words():
    import math

    from dash_app.reasons import _PHRASES, reasons
    from fraud.schemas import NUMERIC_FEATURES

    top = [{"feature": "v_count", "value": 12.0, "contribution": 0.31},
           {"feature": "f_near_ctr_threshold", "value": 1.0, "contribution": 0.2},
           {"feature": "f_log_amount", "value": math.log1p(9500.0), "contribution": 0.052},
           {"feature": "domain", "value": "fintech", "contribution": 0.01},
           {"feature": "v_amount_sum", "value": None, "contribution": 0.004},
           {"feature": "an_input_added_later", "value": 3, "contribution": 0.001}]
    assert reasons(top, 300) == [
        "12 transactions by this actor in 5 min (+0.31)", "amount just under the reporting threshold (+0.20)",
        "amount of about $9,500 (+0.05)", "a fintech transaction (+0.01)", "v_amount_sum not known (+0.00)",
        "an_input_added_later = 3 (+0.00)"]
    assert reasons(top[:1], 90) == ["12 transactions by this actor in 90 s (+0.31)"]
    assert reasons(None, 300) == []
    assert set(NUMERIC_FEATURES) == set(_PHRASES), "every model input has its phrase"


def test_champion_and_challenger_side_by_side():
    figures_of = {"rows": 10, "accuracy": 0.9, "macro_f1": 0.8, "alerts": 3, "fraud_rows_alerted": 0.75,
                  "alerts_on_fraud": 0.6667}
    compared = {"champion": "v0001", "challenger": "v0002", "rows": 12, "from": "t0", "to": "t1",
                "agreement": {"same_class": 0.9, "alerts_champion_only": 1, "alerts_challenger_only": 2,
                              "alerts_both": 3},
                "ground_truth": {"rows": 10, "champion": figures_of, "challenger": {**figures_of, "accuracy": 0.95}},
                "verdicts": {"transactions": 0, "champion": {"rows": 0}, "challenger": {"rows": 0}}}
    shown = str(layout.challenger_comparison(compared))
    assert "champion v0001" in shown and "challenger v0002 (shadow)" in shown
    assert "0.9000" in shown and "0.9500" in shown and "n/a" in shown  # no verdicts yet: n/a, not 0
    assert "only the challenger 2" in shown
    assert "No challenger scored" in str(layout.challenger_comparison(None))
