"""Thin glue: Dash callbacks and the HTTP API call the ``*_view`` functions below, which
call ``data`` and hand the results to ``layout`` and ``figures``.

The view functions are plain functions of (context, inputs) so tests call them directly.
Every one of them turns ``SourceDown`` into the page's "source unavailable" banner and
empty figures: no page ever draws data it did not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qs

import psycopg
from dash import Input, Output, State, ctx as dash_ctx, no_update
from dash.exceptions import PreventUpdate

from dash_app import data, figures, identity, layout
from dash_app.identity import Login
from fraud.cli import UserError
from fraud.config import Config
from fraud.labels import ACTIONS


@dataclass
class AppContext:
    config: Config
    source: data.DataSource
    load_tests: data.LoadTests
    # Who may do what (dash_app.identity); with a login, the analyst is the signed-in user.
    login: Login | None = None


def _window(time_range: str | None) -> int:
    return data.TIME_RANGES.get(time_range or "1h", 60)


# --- views ------------------------------------------------------------------------------

def page_view(app_ctx: AppContext, path: str | None, search: str | None):
    path = path or "/"
    if path == "/":
        return layout.live_page()
    if path.startswith("/alerts/"):
        user = identity.current(app_ctx.login).user
        return layout.detail_page(path.removeprefix("/alerts/"), analyst_default=user or "",
                                  analyst_locked=user is not None)
    if path == "/load-tests":
        selected = parse_qs((search or "").lstrip("?")).get("test", [None])[0]
        return layout.loadtest_page(app_ctx.config.simulator.load_levels_per_min, selected)
    if path == "/model":
        return layout.model_page()
    if path == "/pipeline":
        return layout.pipeline_page()
    if path == "/quality":
        return layout.quality_page()
    return layout.not_found(path)


def live_view(app_ctx: AppContext, flt: data.FeedFilter):
    """(status, kpi cards, alerts/min figure, events/min figure, feed)."""
    dashboard = app_ctx.config.dashboard
    try:
        kpis = data.live_kpis(app_ctx.source, dashboard.kpi_window_min)
        alerts = data.alerts_per_minute(app_ctx.source, flt.window_min)
        events = data.events_per_minute(app_ctx.source, flt.window_min)
        feed = data.alert_feed(app_ctx.source, flt, dashboard.feed_limit)
    except data.SourceDown as err:
        down = figures.empty("PostgreSQL unavailable")
        return layout.source_down(str(err)), [], down, down, []
    return (None, layout.kpi_cards(kpis),
            figures.per_minute_by_domain(alerts, "Alerts per minute", "alerts"),
            figures.per_minute_by_domain(events, "Events per minute (ingested)", "events"),
            layout.alert_feed(feed))


def detail_view(app_ctx: AppContext, alert_id: str):
    """(status, body)."""
    try:
        detail = data.alert_detail(app_ctx.source, alert_id)
    except data.SourceDown as err:
        return layout.source_down(str(err)), []
    if detail is None:
        return layout.not_found(f"/alerts/{alert_id} (no such alert)"), []
    return None, layout.detail_body(detail, figures.class_probabilities(detail["alert"]["class_probabilities"]),
                                    figures.actor_timeline(detail["timeline"], alert_id),
                                    app_ctx.config.stream.velocity_window_s)


def action_view(app_ctx: AppContext, alert_id: str, action: str, analyst: str | None, note: str | None) -> str:
    """Apply one analyst action; the line to show under the buttons."""
    caller = identity.current(app_ctx.login)
    if not caller.may("analyst"):
        return f"not saved: {caller.user} has the {caller.role} role; verdicts need the analyst role"
    who = caller.user or analyst
    try:
        row = data.apply_action(app_ctx.source, alert_id, action, who or "", note)
    except (UserError, data.SourceDown) as err:
        return f"not saved: {err}"
    return f"saved: {action} by {who}; status is now {row['status']}"


def loadtest_start_view(app_ctx: AppContext, domain, level, fraud_share, duration) -> tuple[str, str | None]:
    """(message, test id or None)."""
    if isinstance(duration, float) and duration.is_integer():
        duration = int(duration)
    caller = identity.current(app_ctx.login)
    if not caller.may("admin"):
        return f"not started: {caller.user} has the {caller.role} role; load tests need the admin role", None
    try:
        test_id = app_ctx.load_tests.start(app_ctx.load_tests.validate(domain, level, fraud_share, duration))
    except UserError as err:
        return f"not started: {err}", None
    return f"started load test {test_id}", test_id


def loadtest_view(app_ctx: AppContext, selected: str | None):
    """(status, current run panel, history table)."""
    try:
        runs = data.load_test_runs(app_ctx.source)
        test_id = selected or (runs[0]["test_id"] if runs else None)
        result = data.load_test_result(app_ctx.source, test_id) if test_id else None
    except data.SourceDown as err:
        return layout.source_down(str(err)), [], []
    process = app_ctx.load_tests.process_state(test_id) if test_id else None
    if result is None and process is not None:
        # Started here, not in PostgreSQL yet (the simulator is starting, or failed before its first write).
        current = layout.run_pending(test_id, process)
    elif result is None:
        current = layout.run_pending(None, None)
    else:
        current = layout.run_result(result, process, datetime.now(timezone.utc))
    return None, current, layout.runs_table(runs)


def model_view(app_ctx: AppContext, version: str | None, action: str | None):
    """(status, options, version, message, summary, f1 figure, importances, confusion, history)."""
    from fraud.model.versions import promote_version, rollback_version

    message = ""
    caller = identity.current(app_ctx.login)
    if action in ("promote", "rollback") and not caller.may("admin"):
        message = f"{action} refused: {caller.user} has the {caller.role} role; it needs the admin role"
    elif action in ("promote", "rollback"):
        try:
            # The signed-in admin; without a login (loopback, one local user) the app itself.
            actor = caller.user or "dash (no login)"
            pointer = promote_version(app_ctx.config, version, "dash", actor) if action == "promote" \
                else rollback_version(app_ctx.config, "dash", actor)
            message = f"{action}: current version is now {pointer['version']}"
        except (UserError, OSError) as err:
            message = f"{action} failed: {err}"
        except psycopg.Error as err:  # nothing moved: the pointer moves only once the record is written
            message = f"{action} failed: the database did not record it ({type(err).__name__}); nothing changed"
    try:
        registry = data.model_registry(app_ctx.config)
    except data.SourceDown as err:
        down = figures.empty("model registry unavailable")
        return layout.source_down(str(err)), [], None, message, [], down, down, down, []
    versions = sorted(registry["versions"], reverse=True)
    if not versions:
        none = figures.empty("no registered model")
        return (None, [], None, message, layout.html.P("No model registered yet: train one with "
                                                       "jobs/train_model.py."), none, none, none, [])
    if action in ("promote", "rollback") or version not in registry["versions"]:
        version = registry["current"] if registry["current"] in registry["versions"] else versions[0]
    metrics = registry["versions"][version].get("metrics", {})
    return (None, versions, version, message, layout.model_summary(registry, version),
            figures.class_f1(metrics.get("per_class_f1", {})),
            figures.feature_importances(metrics.get("feature_importances", {})),
            figures.confusion_matrix(metrics.get("confusion_matrix")), layout.model_versions(registry))


def drift_view(app_ctx: AppContext):
    from fraud.drift import FLAG

    try:
        return figures.drift_psi(data.latest_drift(app_ctx.source), FLAG)
    except data.SourceDown:
        return figures.empty("PostgreSQL unavailable")


def challenger_view(app_ctx: AppContext):
    """The challenger against the champion, then the typology rules' precision: what runs in shadow."""
    try:
        return [layout.challenger_comparison(data.shadow_comparison(app_ctx.source,
                                                                    data.model_registry(app_ctx.config))),
                layout.rule_figures(data.rule_figures(app_ctx.source, app_ctx.config))]
    except data.SourceDown as err:
        return layout.source_down(str(err))


def pipeline_view(app_ctx: AppContext, time_range: str | None):
    """(status, cost cards, durations, layers, throughput, latency, quarantine, state, upkeep)."""
    try:
        batches = data.batch_history(app_ctx.source, _window(time_range))
        last_upkeep = data.latest_upkeep(app_ctx.source)
    except data.SourceDown as err:
        down = figures.empty("PostgreSQL unavailable")
        return layout.source_down(str(err)), [], down, down, down, down, down, down, None
    cost = data.cost_estimate(batches, app_ctx.config.costs)
    return (None, layout.cost_cards(cost, len(batches)), figures.batch_durations(batches),
            figures.rows_per_layer(batches), figures.throughput(batches), figures.latency(batches),
            figures.quarantine_reasons(batches), figures.state_size(batches), layout.upkeep(last_upkeep))


def quality_view(app_ctx: AppContext, time_range: str | None):
    """(status, kpi cards, pass-rate figure, latest failures table)."""
    window = _window(time_range)
    try:
        validations = data.quality_history(app_ctx.source, window)
        failures = data.quality_failures(app_ctx.source, window)
    except data.SourceDown as err:
        return layout.source_down(str(err)), [], figures.empty("PostgreSQL unavailable"), None
    return (None, layout.quality_kpis(validations), figures.quality_pass_rate(validations),
            layout.quality_failures(failures))


# --- wiring -------------------------------------------------------------------------------

def register(app, app_ctx: AppContext) -> None:
    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def route(path, search):
        return page_view(app_ctx, path, search)

    @app.callback(
        Output("live-status", "children"), Output("live-kpis", "children"), Output("live-alerts-chart", "figure"),
        Output("live-events-chart", "figure"), Output("live-feed", "children"),
        Input("tick", "n_intervals"), Input("f-domain", "value"), Input("f-severity", "value"),
        Input("f-status", "value"), Input("f-type", "value"), Input("f-range", "value"), Input("f-order", "value"))
    def refresh_live(_, domains, severities, statuses, types, time_range, order):
        return live_view(app_ctx, data.FeedFilter(tuple(domains or ()), tuple(severities or ()),
                                                  tuple(statuses or ()), tuple(types or ()), _window(time_range),
                                                  "loss" if order == "loss" else "newest"))

    @app.callback(
        Output("detail-status", "children"), Output("detail-body", "children"), Output("action-result", "children"),
        Input("detail-id", "data"), Input("tick", "n_intervals"),
        *[Input(f"act-{a}", "n_clicks") for a in ACTIONS], State("analyst", "value"), State("note", "value"))
    def refresh_detail(alert_id, _, *args):
        analyst, note = args[-2:]
        trigger = dash_ctx.triggered_id
        message = no_update
        if isinstance(trigger, str) and trigger.startswith("act-"):
            message = action_view(app_ctx, alert_id, trigger.removeprefix("act-"), analyst, note)
        status, body = detail_view(app_ctx, alert_id)
        return status, body, message

    @app.callback(Output("lt-message", "children"), Output("lt-selected", "data"), Input("lt-start", "n_clicks"),
                  State("lt-domain", "value"), State("lt-level", "value"), State("lt-fraud", "value"),
                  State("lt-duration", "value"), prevent_initial_call=True)
    def start_load_test(n_clicks, domain, level, fraud_share, duration):
        if not n_clicks:
            raise PreventUpdate
        message, test_id = loadtest_start_view(app_ctx, domain, level, fraud_share, duration)
        return message, test_id or no_update

    @app.callback(Output("lt-status", "children"), Output("lt-current", "children"), Output("lt-history", "children"),
                  Input("tick", "n_intervals"), Input("lt-selected", "data"))
    def refresh_load_tests(_, selected):
        return loadtest_view(app_ctx, selected)

    @app.callback(
        Output("model-status", "children"), Output("model-version", "options"), Output("model-version", "value"),
        Output("model-message", "children"), Output("model-summary", "children"), Output("model-f1", "figure"),
        Output("model-importances", "figure"), Output("model-confusion", "figure"), Output("model-history", "children"),
        Input("model-version", "value"), Input("model-promote", "n_clicks"), Input("model-rollback", "n_clicks"))
    def refresh_model(version, _promote, _rollback):
        trigger = dash_ctx.triggered_id
        action = trigger.removeprefix("model-") if trigger in ("model-promote", "model-rollback") else None
        return model_view(app_ctx, version, action)

    @app.callback(Output("model-drift", "figure"), Input("tick", "n_intervals"), Input("url", "pathname"))
    def refresh_drift(_, path):
        if path != "/model":
            raise PreventUpdate
        return drift_view(app_ctx)

    @app.callback(Output("model-challenger", "children"), Input("tick", "n_intervals"), Input("url", "pathname"))
    def refresh_challenger(_, path):
        if path != "/model":
            raise PreventUpdate
        return challenger_view(app_ctx)

    @app.callback(
        Output("p-status", "children"), Output("p-cost", "children"), Output("p-durations", "figure"),
        Output("p-layers", "figure"), Output("p-throughput", "figure"), Output("p-latency", "figure"),
        Output("p-quarantine", "figure"), Output("p-state", "figure"), Output("p-upkeep", "children"),
        Input("tick", "n_intervals"), Input("p-range", "value"))
    def refresh_pipeline(_, time_range):
        return pipeline_view(app_ctx, time_range)

    @app.callback(
        Output("q-status", "children"), Output("q-kpis", "children"), Output("q-pass-rate", "figure"),
        Output("q-failures", "children"), Input("tick", "n_intervals"), Input("q-range", "value"))
    def refresh_quality(_, time_range):
        return quality_view(app_ctx, time_range)
