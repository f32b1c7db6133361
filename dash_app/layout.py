"""Pure component builders: data in, Dash components out. No queries, no callbacks."""

from __future__ import annotations

from datetime import datetime, timezone

from dash import dcc, html

from dash_app.data import SEVERITIES, STATUSES, TIME_RANGES
from dash_app.reasons import reasons
from fraud.model_classes import FRAUD_CLASSES
from fraud.config import DOMAINS
from fraud.labels import ACTIONS

PAGES = (("/", "Live"), ("/load-tests", "Load tests"), ("/model", "Model"), ("/pipeline", "Pipeline"),
         ("/quality", "Data quality"))
ACTION_LABELS = {"acknowledge": "Acknowledge", "confirm_fraud": "Confirm fraud",
                 "false_positive": "False positive", "note": "Add note"}


def shell(refresh_ms: int) -> html.Div:
    return html.Div([
        dcc.Location(id="url"),
        dcc.Interval(id="tick", interval=refresh_ms),
        html.Nav([html.Span("Fraud monitor", className="brand")]
                 + [dcc.Link(label, href=href, className="nav-link") for href, label in PAGES], className="nav"),
        html.Main(id="page", className="page"),
    ])


def not_found(path: str) -> html.Div:
    return html.Div([html.H2("Not found"), html.P(f"No page at {path}.")], id="not-found")


def source_down(message: str) -> html.Div:
    """What a page shows instead of data when a source is down: which one, and why."""
    return html.Div([html.Strong("Data source unavailable. "), html.Span(message),
                     html.Span(" Nothing below is current; no data is shown until it is back.")],
                    className="source-down", role="alert")


def _checklist(id_: str, values) -> dcc.Checklist:
    return dcc.Checklist(id=id_, options=[{"label": v.replace("_", " "), "value": v} for v in values],
                         value=list(values), inline=True, className="checklist")


def _time_range(id_: str, default: str = "1h") -> dcc.RadioItems:
    return dcc.RadioItems(id=id_, options=[{"label": k, "value": k} for k in TIME_RANGES], value=default,
                          inline=True, className="checklist")


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def severity_badge(severity: str) -> html.Span:
    return html.Span(severity, className=f"badge sev-{severity}")


def _table(id_: str, header: list[str], rows: list[list], row_class: str = "", empty_text: str = "none") -> html.Table:
    body = [html.Tr([html.Td(c) for c in row], className=row_class) for row in rows]
    if not rows:
        body = [html.Tr(html.Td(empty_text, colSpan=len(header)), className="empty")]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(body)], id=id_,
                      className="table")


# --- live ------------------------------------------------------------------------------

def live_page() -> html.Div:
    return html.Div([
        html.H2("Live"),
        html.Div([
            html.Div([html.Label("Domain"), _checklist("f-domain", DOMAINS)]),
            html.Div([html.Label("Severity"), _checklist("f-severity", SEVERITIES)]),
            html.Div([html.Label("Status"), _checklist("f-status", STATUSES)]),
            html.Div([html.Label("Type (empty: all)"),
                      dcc.Dropdown(id="f-type", options=list(FRAUD_CLASSES), multi=True, placeholder="all types")]),
            html.Div([html.Label("Time range"), _time_range("f-range")]),
            html.Div([html.Label("Order"),
                      dcc.RadioItems(id="f-order", options=[{"label": "newest", "value": "newest"},
                                                            {"label": "money at risk", "value": "loss"}],
                                     value="newest", inline=True)]),
        ], className="filters"),
        html.Div(id="live-status"),
        html.Div(id="live-kpis", className="kpis"),
        html.Div([dcc.Graph(id="live-alerts-chart"), dcc.Graph(id="live-events-chart")], className="two-col"),
        html.H3("Alert feed"),
        html.Div(id="live-feed"),
    ], id="live-page")


def _kpi(label: str, value: str, id_: str) -> html.Div:
    return html.Div([html.Div(value, className="kpi-value"), html.Div(label, className="kpi-label")],
                    className="kpi", id=id_)


def kpi_cards(kpis: dict) -> list:
    window = kpis["window_min"]
    cards = [_kpi(f"{d} events/min ({window} min)", _fmt(v), f"kpi-events-{d}")
             for d, v in kpis["events_per_min"].items()]
    cards.append(_kpi(f"alerts/min ({window} min)", _fmt(kpis["alerts_per_min"], 2), "kpi-alerts"))
    cards.append(html.Div([html.Div([severity_badge(s), f" {n:,}"], className="kpi-sev")
                           for s, n in kpis["open_by_severity"].items()]
                          + [html.Div("open alerts by severity", className="kpi-label")],
                          className="kpi", id="kpi-open"))
    age = kpis["last_batch_age_s"]
    cards.append(_kpi(f"pipeline lag (Kafka records){'' if age is None else f', last batch {age:,.0f} s ago'}",
                      _fmt(kpis["kafka_lag"]), "kpi-lag"))
    cards.append(_kpi(f"p95 detection latency ({kpis['alerted_events']:,} alerted events)",
                      "n/a" if kpis["p95_latency_ms"] is None else f"{kpis['p95_latency_ms'] / 1000:,.1f} s",
                      "kpi-latency"))
    model = kpis["model_in_use"] or "none"
    if kpis["model_current"] and kpis["model_current"] != kpis["model_in_use"]:
        model += f" (current: {kpis['model_current']})"
    cards.append(_kpi("model version in use", model, "kpi-model"))
    return cards


def alert_feed(rows: list[dict]) -> html.Table:
    header = ["last seen", "domain", "type", "severity", "expected loss $", "raised by", "status", "score", "txns",
              "amount", "actor", ""]
    body = [html.Tr([
        html.Td(_fmt(r["last_seen"])), html.Td(r["domain"]), html.Td(r["alert_type"]),
        html.Td(severity_badge(r["severity"])), html.Td(f"{r.get('expected_loss_usd') or 0:,.0f}"),
        html.Td(", ".join(r.get("raised_by") or ())), html.Td(r["status"]), html.Td(f"{r['max_score']:.2f}"),
        html.Td(r["txn_count"]), html.Td(f"{r['total_amount']:,.2f}"), html.Td(r["actor_id"]),
        html.Td(dcc.Link("details", href=f"/alerts/{r['alert_id']}")),
    ], className="feed-row", **{"data-alert-id": r["alert_id"], "data-domain": r["domain"]}) for r in rows]
    if not rows:
        body = [html.Tr(html.Td("no alerts match these filters", colSpan=len(header)), className="empty")]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(body)],
                      id="feed-table", className="table")


# --- alert detail ----------------------------------------------------------------------

def detail_page(alert_id: str, analyst_default: str, analyst_locked: bool) -> html.Div:
    return html.Div([
        dcc.Store(id="detail-id", data=alert_id),
        html.H2("Alert"),
        html.Div(id="detail-status"),
        html.Div([
            html.H3("Analyst action"),
            html.Div([html.Label("Analyst"),
                      dcc.Input(id="analyst", value=analyst_default, disabled=analyst_locked, debounce=False)]),
            html.Div([html.Label("Note"), dcc.Textarea(id="note", style={"width": "100%", "height": "4em"})]),
            html.Div([html.Button(ACTION_LABELS[a], id=f"act-{a}", n_clicks=0, className=f"btn btn-{a}")
                      for a in ACTIONS]),
            html.Div(id="action-result"),
        ], className="panel"),
        html.Div(id="detail-body"),
    ], id="detail-page")


def detail_body(detail: dict, probabilities_fig, timeline_fig, window_s: int) -> list:
    alert = detail["alert"]
    fields = [html.Tr([html.Th(k), html.Td(severity_badge(v) if k == "severity" else
                                           ", ".join(v) if k == "raised_by" else _fmt(v, 3))])
              for k, v in alert.items() if k not in ("class_probabilities", "top_features", "rule_reasons")]
    rules = [f"rule {r['rule']}: {r['reason']}" for r in alert.get("rule_reasons") or ()]
    why = rules + [f"model: {w}" if rules else w for w in reasons(alert["top_features"], window_s)]
    txns = _table("related-transactions",
                  ["transaction", "event time", "amount", "fraud score", "predicted class", "quality flags", "produced",
                   "batch"],
                  [[t["transaction_id"], _fmt(t["event_time"]), f"{t['amount']:,.2f} {t['currency'] or ''}".rstrip(),
                    f"{t['fraud_score']:.3f}", t["predicted_class"], ", ".join(t["quality_flags"]),
                    _fmt(t["produced_at"]), t["batch_id"]] for t in detail["transactions"]],
                  row_class="txn-row", empty_text="no related transactions")
    actions = _table("action-history", ["when", "action", "analyst", "note"],
                     [[_fmt(a["at"]), a["action"], a["actor"], a["note"] or ""] for a in detail["actions"]],
                     row_class="action-row", empty_text="no analyst actions yet")
    return [
        html.H3("Why it fired"),
        html.Ul([html.Li(w) for w in why], id="why-it-fired") if why
        else html.P("no reasons recorded (an alert from before they were)", id="why-it-fired"),
        html.Div([html.Table(html.Tbody(fields), className="table fields", id="alert-fields"),
                  dcc.Graph(figure=probabilities_fig, id="detail-probabilities")], className="two-col"),
        html.H3("Related transactions"), txns,
        dcc.Graph(figure=timeline_fig, id="detail-timeline"),
        html.H3("Analyst actions"), actions,
    ]


# --- load tests ----------------------------------------------------------------------

def loadtest_page(levels: dict[str, int], selected: str | None) -> html.Div:
    return html.Div([
        html.H2("Load tests"),
        html.Div([
            html.Div([html.Label("Domain"), dcc.RadioItems(id="lt-domain", options=["all", *DOMAINS], value="all",
                                                           inline=True, className="checklist")]),
            html.Div([html.Label("Load level"), dcc.RadioItems(
                id="lt-level", options=[{"label": f"{k} ({v:,}/min)", "value": k} for k, v in levels.items()],
                value=next(iter(levels)), inline=True, className="checklist")]),
            html.Div([html.Label("Fraud share (0-1, empty: per-domain default)"),
                      dcc.Input(id="lt-fraud", type="number", min=0, max=1, step=0.01)]),
            html.Div([html.Label("Duration (s)"), dcc.Input(id="lt-duration", type="number", min=1, step=1,
                                                            value=60)]),
            html.Button("Start load test", id="lt-start", n_clicks=0, className="btn"),
            html.Div(id="lt-message"),
        ], className="panel filters"),
        dcc.Store(id="lt-selected", data=selected),
        html.Div(id="lt-status"),
        html.Div(id="lt-current"),
        html.H3("History"),
        html.Div(id="lt-history"),
    ], id="loadtest-page")


def run_result(result: dict, process: dict | None, now: datetime) -> html.Div:
    """One run: progress while it runs; events, rate, alerts, recall, precision, latency when done."""
    run = result["run"]
    parts = [html.H3(f"Run {run['test_id']}"),
             html.P(f"{', '.join(run['domains'])} · {run['load_level'] or 'explicit rate'} · target "
                    f"{_fmt(run['target_rate_per_s'])}/s · status {run['status']}", id="lt-run-status")]
    if run["status"] == "running":
        elapsed = (now - run["started_at"]).total_seconds()
        if process is not None:
            # Paced runs last their duration: elapsed time is the progress.
            total = process["duration_s"]
            parts.append(html.Progress(value=str(min(elapsed, total)), max=str(total), id="lt-progress",
                                       style={"width": "100%"}))
            parts.append(html.P(f"{min(elapsed, total):,.0f} s of {total:,} s; events sent, rate and "
                                "evaluation are reported when it finishes"))
        else:
            parts.append(html.P(f"running for {elapsed:,.0f} s (started elsewhere); events and rates are "
                                "reported when it finishes"))
        if process is not None and not process["running"]:
            parts.append(html.P(f"simulator exited with code {process['exit_code']}: {process['last_line']}",
                                className="source-down"))
        return html.Div(parts, className="panel", id="lt-run")
    evaluation = result["evaluation"] or {}
    latency = evaluation.get("latency_ms") or {}
    rows = [["events sent", _fmt(run["events_sent"])], ["errors", _fmt(run["errors"])],
            ["achieved rate", f"{_fmt(run['achieved_rate_per_s'])}/s"], ["alerts raised", _fmt(result["alerts_raised"])],
            ["recall (sequences caught)", _fmt(evaluation.get("recall"), 4)],
            ["precision (alerts correct)", _fmt(evaluation.get("precision"), 4)]]
    rows += [[f"latency {p}", "n/a" if latency.get(p) is None else f"{latency[p] / 1000:,.1f} s"]
             for p in ("p50", "p95", "p99", "max")]
    if run["message"]:
        rows.append(["message", run["message"]])
    parts.append(_table("lt-result", ["", "value"], rows))
    per_domain = [[d, _fmt(v.get("recall"), 4), f"{v.get('caught', 0)}/{v.get('fraud_sequences', 0)}",
                   _fmt(v.get("precision"), 4), f"{v.get('correct_alerts', 0)}/{v.get('alerts', 0)}"]
                  for d, v in sorted((evaluation.get("domains") or {}).items())]
    parts.append(_table("lt-domains", ["domain", "recall", "caught", "precision", "correct"], per_domain,
                        empty_text="no fraud sequences or alerts yet"))
    return html.Div(parts, className="panel", id="lt-run")


def run_pending(test_id: str | None, process: dict | None) -> html.Div:
    """A run started here that PostgreSQL does not know yet (starting, or failed before its first write)."""
    if test_id is None:
        return html.P("no load test selected", id="lt-run")
    text = ("starting" if process is None or process["running"]
            else f"simulator exited with code {process['exit_code']}: {process['last_line']}")
    return html.Div([html.H3(f"Run {test_id}"), html.P(text, id="lt-run-status")], className="panel", id="lt-run")


def runs_table(runs: list[dict]) -> html.Table:
    return _table("lt-runs", ["test id", "started", "status", "domains", "level", "events", "achieved/s"],
                  [[dcc.Link(r["test_id"], href=f"/load-tests?test={r['test_id']}"), _fmt(r["started_at"]),
                    r["status"], ", ".join(r["domains"]), r["load_level"] or "rate", _fmt(r["events_sent"]),
                    _fmt(r["achieved_rate_per_s"])] for r in runs], row_class="run-row", empty_text="no runs yet")


# --- model ---------------------------------------------------------------------------

def model_page() -> html.Div:
    return html.Div([
        html.H2("Model"),
        html.Div(id="model-status"),
        html.Div([html.Label("Version"), dcc.Dropdown(id="model-version", clearable=False),
                  html.Button("Promote this version", id="model-promote", n_clicks=0, className="btn"),
                  html.Button("Roll back", id="model-rollback", n_clicks=0, className="btn"),
                  html.Div(id="model-message")], className="panel"),
        html.Div(id="model-summary"),
        html.Div([dcc.Graph(id="model-f1"), dcc.Graph(id="model-importances")], className="two-col"),
        dcc.Graph(id="model-confusion"),
        dcc.Graph(id="model-drift"),
        html.H3("Champion and challenger"),
        html.Div(id="model-challenger"),
        html.H3("Versions"),
        html.Div(id="model-history"),
    ], id="model-page")


def model_summary(registry: dict, version: str) -> html.Table:
    meta = registry["versions"][version]
    metrics = meta.get("metrics", {})
    seq = metrics.get("sequence_detection", {})
    rows = [["version", version + (" (current)" if version == registry["current"] else "")],
            ["created", meta.get("created_at")], ["accuracy", _fmt(metrics.get("accuracy"), 4)],
            ["weighted F1", _fmt(metrics.get("weighted_f1"), 4)], ["macro F1", _fmt(metrics.get("macro_f1"), 4)],
            ["sequence recall", _fmt(seq.get("recall"), 4)], ["held-out events", _fmt(metrics.get("events"))],
            ["alert threshold", _fmt(meta.get("alert_threshold"), 2)],
            *_out_of_profile_rows(metrics.get("out_of_profile")),
            ["training data", _training_data(meta.get("training_data", {}))],
            ["code revision", meta.get("code_revision")], ["training seconds", _fmt(meta.get("training_seconds"))]]
    return _table("model-metrics", ["", "value"], rows)


def _training_data(data: dict) -> str:
    if "retrain" in data:  # jobs/retrain.py
        retrain = data["retrain"]
        return f"silver of the last {retrain['days']} days, {retrain['verdicts']:,} analyst verdicts"
    return ", ".join(data.get("train", {}).get("test_ids", []))


# Rows of the champion/challenger table: (label, section of fraud.shadow.compare, figure, digits).
_COMPARED = [
    ("accuracy against ground truth", "ground_truth", "accuracy", 4),
    ("macro F1 against ground truth", "ground_truth", "macro_f1", 4),
    ("fraud rows alerted (ground truth)", "ground_truth", "fraud_rows_alerted", 4),
    ("alerts on fraud (ground truth)", "ground_truth", "alerts_on_fraud", 4),
    ("alerted rows", "ground_truth", "alerts", 0),
    ("accuracy against analyst verdicts", "verdicts", "accuracy", 4),
    ("confirmed fraud alerted (verdicts)", "verdicts", "fraud_rows_alerted", 4),
]


def challenger_comparison(compared: dict | None) -> html.Div:
    """Both models on the same traffic (``python -m fraud.model compare``), side by side."""
    if compared is None:
        return html.P("No challenger scored beside the current model: set one with "
                      "python -m fraud.model challenger VERSION, or let jobs/retrain.py register one.",
                      className="empty")
    rows = [[label, *(_fmt(compared[section][role].get(key), digits) for role in ("champion", "challenger"))]
            for label, section, key, digits in _COMPARED]
    agreement = compared["agreement"]
    return html.Div([
        html.P(f"{compared['rows']:,} rows scored by both from {compared['from']} to {compared['to']}; "
               f"{compared['ground_truth']['rows']:,} with ground truth, {compared['verdicts']['transactions']:,} "
               f"under analyst verdicts; same class on {_fmt(agreement['same_class'], 4)}, alerts only the "
               f"champion raised {agreement['alerts_champion_only']:,}, only the challenger "
               f"{agreement['alerts_challenger_only']:,}."),
        _table("model-challenger-table", ["", f"champion {compared['champion']}",
                                          f"challenger {compared['challenger']} (shadow)"], rows),
    ])


def rule_figures(rules: list[dict]) -> html.Div:
    """The typology rules beside the model: mode, hits, precision by verdicts and by ground truth."""
    def share(value, n):
        return "n/a" if value is None else f"{value:.0%} of {n:,}"

    return html.Div([html.H3("Typology rules"), _table(
        "rule-figures", ["rule", "mode", "alert type", "hits", "alerted", "precision (verdicts)",
                         "precision (ground truth)"],
        [[r["rule"], r["mode"], r["alert_type"], f"{r['hits']:,}", f"{r.get('alerted', 0):,}",
          share(r.get("precision_by_verdicts"), r.get("judged", 0)), share(r.get("precision_by_truth"), r.get("known", 0))]
         for r in rules], row_class="rule-row", empty_text="no rules configured")])


def _out_of_profile_rows(oop: dict | None) -> list[list]:
    """Per domain, recall / precision on traffic from a profile the model never trained on."""
    if not oop:
        return [["out of profile", "not evaluated"]]
    return [[f"out of profile ({oop['profile']}): {domain}",
             f"recall {_fmt(f['recall'], 4)}, precision {_fmt(f['precision'], 4)}"]
            for domain, f in oop["by_domain"].items()]


def model_versions(registry: dict) -> html.Table:
    history = registry["history"]
    rows = []
    for version, meta in sorted(registry["versions"].items(), reverse=True):
        metrics = meta.get("metrics", {})
        state = ("current" if version == registry["current"] else "challenger" if version == registry["challenger"]
                 else "promoted before" if version in history else "")
        rows.append([version, meta.get("created_at"), _fmt(metrics.get("accuracy"), 4),
                     _fmt(metrics.get("macro_f1"), 4), state])
    return _table("model-versions", ["version", "created", "accuracy", "macro F1", ""], rows,
                  row_class="version-row", empty_text="no registered versions")


# --- pipeline --------------------------------------------------------------------------

def pipeline_page() -> html.Div:
    return html.Div([
        html.H2("Pipeline"),
        html.Div([html.Label("Time range"), _time_range("p-range")], className="filters"),
        html.Div(id="p-status"),
        html.Div(id="p-cost", className="kpis"),
        html.Div([dcc.Graph(id="p-durations"), dcc.Graph(id="p-layers")], className="two-col"),
        html.Div([dcc.Graph(id="p-throughput"), dcc.Graph(id="p-latency")], className="two-col"),
        html.Div([dcc.Graph(id="p-quarantine"), dcc.Graph(id="p-state")], className="two-col"),
        html.H3("Storage and upkeep"),
        html.Div(id="p-upkeep"),
    ], id="pipeline-page")


def cost_cards(cost: dict | None, batches: int) -> list:
    if cost is None:
        return [_kpi("cost per 1M events", "n/a: no processed batches in this time range", "kpi-cost")]
    c = cost["currency"]
    return [
        _kpi(f"cost per 1M events at capacity ({_fmt(cost['capacity_events_per_s'])} events/s while busy)",
             f"{cost['per_million_at_capacity']:,.4f} {c}", "kpi-cost"),
        _kpi(f"cost per 1M events at the observed load ({_fmt(cost['observed_events_per_s'])} events/s)",
             f"{cost['per_million_observed']:,.4f} {c}", "kpi-cost-observed"),
        _kpi("job + services per hour (config prices)", f"{cost['per_hour']:,.4f} {c}", "kpi-cost-hour"),
        _kpi("batches / events in range", f"{batches:,} / {cost['events']:,}", "kpi-batches"),
    ]


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.1f} MiB"


def upkeep(run: dict | None) -> html.Div:
    """Sizes after the last maintenance run: per lake table, the checkpoint, PostgreSQL's tables."""
    if run is None:
        return html.Div(["No maintenance run recorded yet: ", html.Code("jobs/maintain_lake.py"),
                         " compacts the lake, expires old rows and records the sizes here."], id="p-upkeep-none")
    lake = [[t, _fmt(r["live_files_after"]), _fmt(r["files_on_disk_after"]), _mib(r.get("log_bytes")),
             f"{r['compaction_s']} s / {r['vacuum_s']} s"] for t, r in sorted(run["lake"].items())]
    postgres = [[t, _mib(b)] for t, b in sorted(run["postgres_bytes"].items())]
    archived = run["alerts_archived"]
    expired = ", ".join(f"{t} {n:,}" for t, n in sorted(run["rows_expired"].items()))
    return html.Div([
        html.P(f"Last run {run['finished_at']:%Y-%m-%d %H:%M} UTC ({run['run_id']}): checkpoint "
               f"{_mib(run['checkpoint_bytes'])}, of which state {_mib(run['state_bytes'])}; "
               f"{archived:,} closed alerts archived to the lake; rows expired: {expired or 'none'}."),
        html.Div([
            _table("p-upkeep-lake", ["lake table", "live files", "files on disk", "log", "compaction / vacuum"], lake),
            _table("p-upkeep-postgres", ["PostgreSQL table", "size with indexes"], postgres),
        ], className="two-col"),
    ])


# --- data quality ----------------------------------------------------------------------

def quality_page() -> html.Div:
    return html.Div([
        html.H2("Data quality"),
        html.Div([html.Label("Time range"), _time_range("q-range")], className="filters"),
        html.Div(id="q-status"),
        html.Div(id="q-kpis", className="kpis"),
        dcc.Graph(id="q-pass-rate"),
        html.H3("Latest failures"),
        html.Div(id="q-failures"),
    ], id="quality-page")


def quality_kpis(validations: list[dict]) -> list:
    rows = [v for v in validations if v["engine"] == "spark"]
    checked = sum(v["rows_checked"] or 0 for v in rows)
    failed = sum(v["rows_failed"] or 0 for v in rows)
    flagged = sum(v["rows_flagged"] or 0 for v in rows)
    runs = [v for v in validations if v["engine"] == "great_expectations"]
    return [
        _kpi("rows passing the event suite", f"{100 * (1 - failed / checked):.2f} %" if checked else "n/a", "kpi-q-rate"),
        _kpi("rows scored with quality flags", f"{flagged:,} of {checked:,}", "kpi-q-flagged"),
        _kpi("rows quarantined by an expectation", f"{failed - flagged:,} of {checked:,}", "kpi-q-failed"),
        _kpi("GX checkpoint runs passed", f"{sum(v['success'] for v in runs)} / {len(runs)}", "kpi-q-gx"),
    ]


def quality_failures(rows: list[dict]) -> html.Table:
    def examples(r):
        return ", ".join(f"{e.get('transaction_id', '')} = {e.get('value')!r}".lstrip(" =")
                         for e in (r["examples"] or []))
    return _table("q-failure-table", ["validated", "batch", "suite", "engine", "expectation", "action", "column",
                                      "rows", "examples"],
                  [[_fmt(r["validated_at"]), r["batch_id"], r["suite"], r["engine"], r["expectation"], r["action"] or "",
                    r["column"] or "", r["unexpected"] if r["unexpected"] is not None else "", examples(r)]
                   for r in rows],
                  row_class="failure-row", empty_text="no failed expectations in this time range")
