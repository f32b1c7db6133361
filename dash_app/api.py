"""The app's HTTP API, for case-management systems and scripts, and its OpenAPI document.

- ``GET /api/alerts``: newest first, filtered by domain, severity, status (each repeatable) and
  ``since`` (alerts seen since then); keyset pagination: an answer's ``next`` (the position of its
  last alert, ``before`` and ``beforeId``) are the parameters of the next page. Transparent, so that
  every value the document allows is a meaningful request (no opaque cursor a client could mangle).
- ``GET /api/alerts/<id>``: the alert with its related transactions and analyst actions.
- ``POST /api/alerts/<id>/actions``: acknowledge, confirm_fraud, false_positive or note, with who
  (the logged-in user when login is on) and when (the server's clock).
- ``POST /api/test/execute`` (load tests) and ``GET /api/test/<id>``.
- ``GET /api/openapi.json``: the document below, which tests/test_dash_api.py checks every answer
  against with schemathesis, on the running app.

Bodies are JSON or form-encoded (scripts of the replaced system post
``domain=gaming&loadLevel=normal``). Bad input gets 400 ``{"error": "..."}``, an unknown alert 404,
PostgreSQL down 503; the login rules (``dash_app.app``) apply to every path.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import flask

from dash_app import data, identity
from fraud.cli import UserError
from fraud.config import DOMAINS
from fraud.labels import ACTIONS, MAX_NOTE_CHARS

MAX_PAGE = 500


class BadRequest(Exception):
    """Input the client must fix: 400 with this message."""


class Forbidden(Exception):
    """The caller's role does not allow this: 403 with this message."""


def register_api(server: flask.Flask, app_ctx) -> None:
    @server.before_request
    def api_routes_only():
        """Under /api/ only the API's routes answer: Dash serves its page for any GET path, which would
        make every API path answer GET (and say so in ``Allow``)."""
        if not flask.request.path.startswith("/api/"):
            return None
        allowed = _api_methods(server, flask.request.path)
        headers = {"Allow": ", ".join(sorted(allowed | {"OPTIONS"}))}
        if not allowed:
            return flask.jsonify(error=f"no API at {flask.request.path}"), 404
        if flask.request.method == "OPTIONS":
            return flask.Response(status=204, headers=headers)
        if flask.request.method not in allowed | ({"HEAD"} if "GET" in allowed else set()):
            return flask.jsonify(error=f"{flask.request.method} is not allowed here"), 405, headers
        return None

    @server.errorhandler(BadRequest)
    def bad_request(err):
        return flask.jsonify(error=str(err)), 400

    @server.errorhandler(Forbidden)
    def forbidden(err):
        return flask.jsonify(error=str(err)), 403

    @server.errorhandler(data.SourceDown)
    def source_down(err):
        return flask.jsonify(error=str(err)), 503

    def _caller(role: str) -> identity.Identity:
        """Who is calling, if they hold ``role`` (403 otherwise)."""
        caller = identity.current(app_ctx.login)
        if not caller.may(role):
            raise Forbidden(f"{caller.user} has the {caller.role} role: this needs the {role} role")
        return caller

    @server.get("/api/openapi.json")
    def openapi():
        return flask.jsonify(OPENAPI)

    @server.get("/api/alerts")
    def list_alerts():
        query = _query({"domain", "severity", "status", "since", "limit", "before", "beforeId"})
        page = data.alerts_page(
            app_ctx.source,
            domains=_choices(query, "domain", DOMAINS), severities=_choices(query, "severity", data.SEVERITIES),
            statuses=_choices(query, "status", data.STATUSES), since=_time(query.get("since"), "since"),
            limit=_limit(query.get("limit")), before=_time(query.get("before"), "before"),
            before_id=_text(query, "beforeId"))
        return flask.jsonify(alerts=[_jsonable(a) for a in page.alerts],
                             next=None if page.last is None else {"before": page.last[0].isoformat(),
                                                                  "beforeId": page.last[1]})

    @server.get("/api/alerts/<alert_id>")
    def get_alert(alert_id):
        _query(set())
        found = data.alert_record(app_ctx.source, alert_id) if _known_id(alert_id) else None
        if found is None:
            return flask.jsonify(error=f"no alert with id {alert_id!r}"), 404
        return flask.jsonify(_jsonable(found))

    @server.post("/api/alerts/<alert_id>/actions")
    def act_on_alert(alert_id):
        body = _body({"action", "note", "analyst"})
        action, note = _text(body, "action"), _text(body, "note")
        if action not in ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise BadRequest(f"note is at most {MAX_NOTE_CHARS} characters")
        # With login on, the analyst is who signed in, whatever the body says.
        caller = _caller("analyst")
        analyst = caller.user or _text(body, "analyst")
        if not (analyst or "").strip():
            raise BadRequest("analyst is required (who takes the action)")
        if not _known_id(alert_id) or data.alert_record(app_ctx.source, alert_id, related=False) is None:
            return flask.jsonify(error=f"no alert with id {alert_id!r}"), 404
        try:
            row = data.apply_action(app_ctx.source, alert_id, action, analyst, note)
        except UserError as err:
            raise BadRequest(str(err)) from None
        return flask.jsonify(_jsonable(row | {"action": action})), 201

    @server.post("/api/test/execute")
    def execute_test():
        _caller("admin")
        body = _body({"domain", "loadLevel", "fraudShare", "durationS"})
        form = not flask.request.is_json
        try:
            request = app_ctx.load_tests.validate(
                body.get("domain"), body.get("loadLevel"),
                _number(body.get("fraudShare"), float) if form else body.get("fraudShare"),
                _number(body.get("durationS", "60"), int) if form else body.get("durationS", 60))
        except UserError as err:
            raise BadRequest(str(err)) from None
        try:
            test_id = app_ctx.load_tests.start(request)
        except data.LoadTestsBusy as err:
            return flask.jsonify(error=str(err)), 429
        return flask.jsonify(testId=test_id, status="started"), 202

    @server.get("/api/test/<test_id>")
    def test_status(test_id):
        _query(set())
        process = app_ctx.load_tests.process_state(test_id)
        try:
            run = data.load_test_run(app_ctx.source, test_id) if _known_id(test_id) else None
        except data.SourceDown as err:
            return flask.jsonify(error=str(err), process=process), 503
        if run is None and process is None:
            return flask.jsonify(error=f"no load test {test_id!r}"), 404
        return flask.jsonify(run=None if run is None else _jsonable(run), process=process)


def _api_methods(server: flask.Flask, path: str) -> set[str]:
    """The methods the API's own routes (those under /api/) take at ``path``."""
    from werkzeug.exceptions import HTTPException

    adapter = server.url_map.bind("localhost")
    api = {rule.endpoint for rule in server.url_map.iter_rules() if rule.rule.startswith("/api/")}
    methods = set()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:
            continue
        if endpoint in api:
            methods.add(method)
    return methods


# --- input ------------------------------------------------------------------------------

def _query(allowed: set[str]):
    unknown = sorted(set(flask.request.args) - allowed)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r}")
    return flask.request.args


def _body(allowed: set[str]) -> dict:
    """The request's JSON object or form fields (one value each)."""
    if flask.request.is_json:
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object (or form fields)")
    elif flask.request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        body = {key: values[-1] for key, values in flask.request.form.lists()}
    else:
        raise BadRequest("expected a JSON object or form fields (Content-Type application/json or "
                         "application/x-www-form-urlencoded)")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}")
    return body


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if name in body and not isinstance(value, str):  # null included: leave the field out instead
        raise BadRequest(f"{name} must be a string")
    if value is not None and "\x00" in value:  # PostgreSQL text cannot hold it
        raise BadRequest(f"{name} must not contain NUL characters")
    return value


def _known_id(value: str) -> bool:
    """Whether an id from the path could name a row (PostgreSQL text cannot hold NUL)."""
    return "\x00" not in value


def _number(value, kind):
    """A form field as ``kind``; left as given when it is not one, for the validator's message."""
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return value


def _choices(query, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    given = tuple(query.getlist(name))
    bad = [v for v in given if v not in allowed]
    if bad:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {bad[0]!r}")
    return given or allowed


def _time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 time; without an offset, UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.upper() if "T" in value.upper() else value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time such as 2026-12-04T10:00:00Z, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _limit(value: str | None) -> int:
    if value is None:
        return 100
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}, got {value!r}")
    return int(value)


# --- output -----------------------------------------------------------------------------

def _jsonable(value):
    """Times as ISO 8601, amounts as decimal strings (no float rounding), recursively."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _nullable(schema: dict) -> dict:
    return schema | {"nullable": True}


_TIME = {"type": "string", "format": "date-time"}
_AMOUNT = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal, as text (no float rounding)"}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_RAISED_BY = {"type": "array", "items": {"type": "string", "pattern": "^(model|rule:.+)$"},
              "description": "what raised it: the model, and/or rule:<name> for each typology rule"}
_RULE_REASONS = {"type": "array", "items": {"type": "object", "required": ["rule", "reason"], "properties": {
    "rule": {"type": "string"}, "reason": {"type": "string"}, "source": {"type": "string"}}}}
_ALERT_PROPERTIES = {
    "alert_id": {"type": "string"}, "domain": {"type": "string", "enum": list(DOMAINS)},
    "actor_id": {"type": "string"}, "alert_type": {"type": "string"},
    "severity": {"type": "string", "enum": list(data.SEVERITIES)},
    "status": {"type": "string", "enum": list(data.STATUSES)},
    "max_score": {"type": "number"}, "txn_count": {"type": "integer"}, "total_amount": _AMOUNT,
    "episode_start": _TIME, "first_seen": _TIME, "last_seen": _TIME, "created_at": _TIME, "updated_at": _TIME,
    "model_version": {"type": "string"}, "test_id": _nullable({"type": "string"}),
    "class_probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
    "analyst_note": _nullable({"type": "string"}), "status_by": _nullable({"type": "string"}),
    "status_at": _nullable(_TIME),
    "top_features": {"$ref": "#/components/schemas/TopFeatures"},
    "raised_by": _RAISED_BY, "rule_reasons": _RULE_REASONS,
    "expected_loss_usd": {"type": "number", "description": "fraud probability x amount in USD, summed: what severity ranks"},
}
_SUMMARY_FIELDS = ["alert_id", "domain", "actor_id", "alert_type", "severity", "status", "max_score", "txn_count",
                   "total_amount", "first_seen", "last_seen", "model_version", "status_by", "status_at", "raised_by",
                   "expected_loss_usd"]
_TRANSACTION = {"type": "object", "required": ["transaction_id", "event_time", "amount", "fraud_score"], "properties": {
    "transaction_id": {"type": "string"}, "event_time": _TIME, "amount": _AMOUNT,
    "currency": _nullable({"type": "string"}), "fraud_score": {"type": "number"},
    "predicted_class": {"type": "string"}, "quality_flags": {"type": "array", "items": {"type": "string"}},
    "produced_at": _TIME, "batch_id": {"type": "integer"},
    "top_features": {"$ref": "#/components/schemas/TopFeatures"},
    "raised_by": _RAISED_BY, "rule_reasons": _RULE_REASONS, "expected_loss_usd": {"type": "number"}}}
_ACTION = {"type": "object", "required": ["action", "actor", "at"], "properties": {
    "action": {"type": "string", "enum": list(ACTIONS)}, "note": _nullable({"type": "string"}),
    "actor": {"type": "string"}, "at": _TIME}}
_ERRORS = {str(code): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
           for code, text in ((400, "bad input, with the reason"), (401, "no valid login (when one is configured)"),
                              (403, "the caller's role does not allow it"), (503, "PostgreSQL unavailable"))}
def _json_or_form(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema},
                                          "application/x-www-form-urlencoded": {"schema": schema}}}
_NOT_FOUND = {"description": "no such alert",
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _list_param(name: str, allowed) -> dict:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": True,
            "description": "repeat to match any of several (default: all)",
            "schema": {"type": "array", "items": {"type": "string", "enum": list(allowed)}}}


def _action_body(actions: list[str], note_required: bool) -> dict:
    """An action's body: a note action needs a note; who acts is the logged-in user when login is on
    (``analyst`` is then ignored), else ``analyst``."""
    return {"type": "object", "required": ["action", "analyst", *(["note"] if note_required else [])],
            "additionalProperties": False, "properties": {
                "action": {"type": "string", "enum": actions},
                "note": {"type": "string", "maxLength": MAX_NOTE_CHARS, "pattern": r"^[^\x00]*\S[^\x00]*$"}
                if note_required else {"type": "string", "maxLength": MAX_NOTE_CHARS, "pattern": r"^[^\x00]*$"},
                "analyst": {"type": "string", "pattern": r"^[^\x00]*\S[^\x00]*$",
                            "description": "who acts (ignored when login is on: the logged-in user)"}}}


OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Fraud monitor API", "version": "1.0.0",
             "description": "Alerts for case-management systems, analyst actions, and load tests."},
    "paths": {
        "/api/alerts": {"get": {
            "operationId": "listAlerts", "summary": "Alerts, newest first",
            "parameters": [
                _list_param("domain", DOMAINS), _list_param("severity", data.SEVERITIES),
                _list_param("status", data.STATUSES),
                {"name": "since", "in": "query", "required": False, "schema": _TIME,
                 "description": "only alerts seen at or after this time"},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100}},
                {"name": "before", "in": "query", "required": False, "schema": _TIME,
                 "description": "only alerts last seen before this (a page's next.before)"},
                {"name": "beforeId", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "with before: also alerts last seen exactly then whose id sorts before this"
                                " (a page's next.beforeId)"}],
            "responses": {"200": {"description": "a page of alerts", "content": {"application/json": {"schema": {
                "type": "object", "required": ["alerts", "next"], "properties": {
                    "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/AlertSummary"}},
                    "next": _nullable({"type": "object", "required": ["before", "beforeId"], "properties": {
                        "before": _TIME, "beforeId": {"type": "string"}}})}}}}}, **_ERRORS}}},
        "/api/alerts/{alert_id}": {"get": {
            "operationId": "getAlert", "summary": "An alert with its related transactions and actions",
            "parameters": [_ALERT_ID],
            "responses": {"200": {"description": "the alert", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Alert"}}}}, "404": _NOT_FOUND, **_ERRORS}}},
        "/api/alerts/{alert_id}/actions": {"post": {
            "operationId": "actOnAlert", "summary": "Acknowledge, confirm fraud, mark a false positive, or note",
            "parameters": [_ALERT_ID],
            "requestBody": _json_or_form({"oneOf": [
                _action_body([a for a in ACTIONS if a != "note"], note_required=False),
                _action_body(["note"], note_required=True)]}),
            "responses": {"201": {"description": "the alert's analyst columns after the action",
                                  "content": {"application/json": {"schema": {
                                      "type": "object", "required": ["alert_id", "status", "action"], "properties": {
                                          "alert_id": {"type": "string"},
                                          "status": {"type": "string", "enum": list(data.STATUSES)},
                                          "analyst_note": _nullable({"type": "string"}),
                                          "status_by": _nullable({"type": "string"}), "status_at": _nullable(_TIME),
                                          "action": {"type": "string", "enum": list(ACTIONS)}}}}}},
                          "404": _NOT_FOUND, **_ERRORS}}},
        "/api/test/execute": {"post": {
            "operationId": "startLoadTest", "summary": "Start a simulator run in the background",
            "requestBody": _json_or_form({"type": "object", "required": ["domain", "loadLevel"],
                                          "additionalProperties": False, "properties": {
                                              "domain": {"type": "string", "enum": [*DOMAINS, "all"]},
                                              "loadLevel": {"type": "string"},
                                              "fraudShare": {"type": "number", "minimum": 0, "maximum": 1},
                                              "durationS": {"type": "integer", "minimum": 1,
                                                            "maximum": data.MAX_LOAD_TEST_S}}}),
            "responses": {"202": {"description": "started", "content": {"application/json": {"schema": {
                "type": "object", "required": ["testId", "status"],
                "properties": {"testId": {"type": "string"}, "status": {"type": "string"}}}}}},
                "429": {"description": "as many load tests as allowed are running",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                **_ERRORS}}},
        "/api/test/{test_id}": {"get": {
            "operationId": "getLoadTest", "summary": "A load test's run row and process state",
            "parameters": [{"name": "test_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the run", "content": {"application/json": {"schema": {
                "type": "object", "required": ["run", "process"],
                "properties": {"run": _nullable({"type": "object"}), "process": _nullable({"type": "object"})}}}}},
                "404": {"description": "no such run", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}}, **_ERRORS}}},
    },
    "components": {"schemas": {
        "Error": _ERROR,
        "TopFeatures": {"type": "array", "description": "why it fired: the model inputs that raised the predicted "
                        "class's probability the most, largest first", "items": {
                            "type": "object", "required": ["feature", "value", "contribution"], "properties": {
                                "feature": {"type": "string"},
                                "value": {"nullable": True, "description": "the input's value (number or category)"},
                                "contribution": {"type": "number", "description": "probability points"}}}},
        "AlertSummary": {"type": "object", "required": _SUMMARY_FIELDS,
                         "properties": {k: _ALERT_PROPERTIES[k] for k in _SUMMARY_FIELDS}},
        "Alert": {"type": "object", "required": [*_ALERT_PROPERTIES, "transactions", "actions"], "properties": {
            **_ALERT_PROPERTIES, "transactions": {"type": "array", "items": _TRANSACTION},
            "actions": {"type": "array", "items": _ACTION}}},
    }},
}
