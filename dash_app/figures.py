"""Pure data -> Plotly figure functions; no queries, no Dash."""

from __future__ import annotations

from collections import Counter, defaultdict

import plotly.graph_objects as go

from fraud.config import DOMAINS

DOMAIN_COLOURS = {"gaming": "#7b61ff", "fintech": "#0b8a6f", "ecommerce": "#e07b00"}
_LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "template": "plotly_white", "height": 300}


def empty(message: str, title: str = "") -> go.Figure:
    """A blank figure that says why there is nothing to draw."""
    fig = go.Figure()
    fig.update_layout(**_LAYOUT, title=title, xaxis={"visible": False}, yaxis={"visible": False},
                      annotations=[{"text": message, "showarrow": False, "font": {"size": 14}}])
    return fig


def per_minute_by_domain(rows: list[dict], title: str, y_title: str) -> go.Figure:
    """Rows of {minute, domain, n} as one line per domain."""
    if not rows:
        return empty("no data in this time range", title)
    series: dict[str, list[tuple]] = defaultdict(list)
    for r in rows:
        series[r["domain"]].append((r["minute"], r["n"]))
    fig = go.Figure()
    for domain in [d for d in DOMAINS if d in series] + sorted(set(series) - set(DOMAINS)):
        points = sorted(series[domain])
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=domain,
                                 mode="lines+markers", line={"color": DOMAIN_COLOURS.get(domain)}))
    fig.update_layout(**_LAYOUT, title=title, yaxis_title=y_title)
    return fig


def class_probabilities(probabilities: dict[str, float]) -> go.Figure:
    if not probabilities:
        return empty("no class probabilities stored", "Class probabilities")
    items = sorted(probabilities.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                           marker_color="#c0392b"))
    fig.update_layout(**{**_LAYOUT, "height": 320}, title="Class probabilities", xaxis={"range": [0, 1]})
    return fig


def actor_timeline(rows: list[dict], alert_id: str) -> go.Figure:
    """The actor's alerted events over time: amount, fraud score as size, this alert's events highlighted."""
    if not rows:
        return empty("no alerted events for this actor", "Actor timeline")
    fig = go.Figure()
    for is_this, name, colour in ((False, "other alerts of this actor", "#95a5a6"), (True, "this alert", "#c0392b")):
        points = [r for r in rows if (r["alert_id"] == alert_id) == is_this]
        if not points:
            continue
        fig.add_trace(go.Scatter(
            x=[r["event_time"] for r in points], y=[float(r["amount"]) for r in points], mode="markers",
            name=name, marker={"size": [8 + 14 * float(r["fraud_score"]) for r in points], "color": colour},
            text=[f"{r['predicted_class']} score {float(r['fraud_score']):.2f}" for r in points]))
    fig.update_layout(**_LAYOUT, title="Actor timeline (alerted events)", yaxis_title="amount")
    return fig


def class_f1(per_class_f1: dict[str, float]) -> go.Figure:
    if not per_class_f1:
        return empty("no per-class F1 stored", "Per-class F1")
    fig = go.Figure(go.Bar(x=list(per_class_f1), y=list(per_class_f1.values()), marker_color="#2c7fb8"))
    fig.update_layout(**{**_LAYOUT, "height": 340}, title="Per-class F1 (held-out set)", yaxis={"range": [0, 1]})
    return fig


def confusion_matrix(matrix: dict | None) -> go.Figure:
    if not matrix or not matrix.get("labels"):
        return empty("no confusion matrix stored", "Confusion matrix")
    labels, counts = matrix["labels"], matrix["counts"]
    fig = go.Figure(go.Heatmap(z=counts, x=labels, y=labels, colorscale="Blues", text=counts,
                               texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}: %{z}"))
    fig.update_layout(**{**_LAYOUT, "height": 480}, title="Confusion matrix (rows: truth, columns: predicted)",
                      yaxis={"autorange": "reversed"})
    return fig


def feature_importances(importances: dict[str, float], top: int = 25) -> go.Figure:
    if not importances:
        return empty("no feature importances stored", "Feature importances")
    items = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                           marker_color="#41ab5d"))
    fig.update_layout(**{**_LAYOUT, "height": 120 + 18 * len(items)}, title=f"Feature importances (top {len(items)})")
    return fig


def _lines(batches: list[dict], series: dict[str, list], title: str, y_title: str) -> go.Figure:
    if not batches:
        return empty("no micro-batches in this time range", title)
    x = [b["finished_at"] for b in batches]
    fig = go.Figure()
    for name, values in series.items():
        if any(v is not None for v in values):
            fig.add_trace(go.Scatter(x=x, y=values, name=name, mode="lines+markers"))
    fig.update_layout(**_LAYOUT, title=title, yaxis_title=y_title)
    return fig


def batch_durations(batches: list[dict]) -> go.Figure:
    """Whole batch and each recorded step (steps overlap when sinks run concurrently)."""
    steps = sorted({s for b in batches for s in b["step_ms"]})
    series = {"batch": [b["duration_s"] for b in batches]}
    series.update({s: [None if s not in b["step_ms"] else b["step_ms"][s] / 1000 for b in batches] for s in steps})
    return _lines(batches, series, "Batch and step durations", "seconds")


def rows_per_layer(batches: list[dict]) -> go.Figure:
    """Rows per layer, and the records a sink or an expression refused (``isolated``: quarantined as
    ``unprocessable:<error>``, fraud.isolation)."""
    layers = ("bronze_rows", "silver_rows", "quarantine_rows", "gold_rows", "alert_rows", "isolated_rows")
    return _lines(batches, {layer.removesuffix("_rows"): [b[layer] for b in batches] for layer in layers},
                  "Rows per layer per batch", "rows")


def throughput(batches: list[dict]) -> go.Figure:
    return _lines(batches, {"events/s while processing": [
        round(b["input_rows"] / b["duration_s"], 1) if b["duration_s"] > 0 else None for b in batches]},
        "Throughput", "events per second")


def latency(batches: list[dict]) -> go.Figure:
    return _lines(batches, {p: [b[f"latency_{p}_ms"] for b in batches] for p in ("p50", "p95", "p99")},
                  "Detection latency (produced -> alert committed)", "ms")


def drift_psi(rows: list[dict], flag: float) -> go.Figure:
    """PSI per input of the last drift run, largest first; bars above ``flag`` in red."""
    title = "Drift: live window against the training reference (PSI)"
    if not rows:
        return empty("no drift measured yet (python -m fraud.model drift)", title)
    r0 = rows[0]
    fig = go.Figure(go.Bar(x=[r["feature"] for r in rows], y=[r["psi"] for r in rows],
                           marker_color=["#c0392b" if r["flagged"] else "#41ab5d" for r in rows]))
    fig.add_hline(y=flag, line_dash="dash", annotation_text=f"flag above {flag}")
    fig.update_layout(**_LAYOUT, title=f"{title}: model {r0['model_version']}, {r0['rows']:,} rows,"
                      f" {r0['window_start']:%H:%M}-{r0['window_end']:%H:%M} UTC", yaxis_title="PSI")
    return fig


def state_size(batches: list[dict]) -> go.Figure:
    """The velocity state after each batch: rows (TTL bounds them) and RocksDB's memory (bounded)."""
    return _lines(batches, {
        "rows (thousands)": [None if b["state_rows"] is None else b["state_rows"] / 1000 for b in batches],
        "memory (MiB)": [None if b["state_memory_bytes"] is None else round(b["state_memory_bytes"] / 2**20, 1)
                         for b in batches]}, "State store", "thousands of rows / MiB")


def quarantine_reasons(batches: list[dict]) -> go.Figure:
    totals: Counter = Counter()
    for b in batches:
        totals.update(b["quarantine_by_reason"] or {})
    if not totals:
        return empty("nothing quarantined in this time range", "Quarantine by reason")
    items = totals.most_common()
    fig = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items], marker_color="#d95f0e"))
    fig.update_layout(**_LAYOUT, title="Quarantine by reason", yaxis_title="records")
    return fig


def quality_pass_rate(validations: list[dict]) -> go.Figure:
    """Share of checked rows passing every row-level expectation, per batch (engine ``spark``), and
    the GX checkpoint runs as pass (1) / fail (0) markers."""
    title = "Data quality: rows passing the event suite"
    rows = [v for v in validations if v["engine"] == "spark" and v["rows_checked"]]
    runs = [v for v in validations if v["engine"] == "great_expectations"]
    if not rows and not runs:
        return empty("no validations in this time range", title)
    fig = go.Figure()
    if rows:
        fig.add_trace(go.Scatter(x=[v["validated_at"] for v in rows], mode="lines+markers", name="rows passing",
                                 y=[round(1 - (v["rows_failed"] or 0) / v["rows_checked"], 4) for v in rows]))
    if runs:
        fig.add_trace(go.Scatter(x=[v["validated_at"] for v in runs], y=[1.0 if v["success"] else 0.0 for v in runs],
                                 mode="markers", name="GX checkpoint passed", marker={"size": 10, "symbol": "diamond"}))
    fig.update_layout(**_LAYOUT, title=title, yaxis_title="share", yaxis_range=[0, 1.05])
    return fig
