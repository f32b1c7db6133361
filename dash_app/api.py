"""The app's HTTP API, for case-management systems and scripts, and its OpenAPI document.

- ``GET /api/alerts``: newest first, filtered by domain, severity, status (each repeatable) and
  ``since`` (alerts seen since then); cursor pagination (``nextCursor`` -> ``cursor``).
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

import base64
import binascii
import json
from datetime import datetime, timezone
from decimal import Decimal

import flask

from dash_app import data
from fraud.cli import UserError
from fraud.config import DOMAINS
from fraud.labels import ACTIONS, MAX_NOTE_CHARS

MAX_PAGE = 500


class BadRequest(Exception):
    """Input the client must fix: 400 with this message."""


def register_api(server: flask.Flask, app_ctx) -> None:
    @server.errorhandler(BadRequest)
    def bad_request(err):
        return flask.jsonify(error=str(err)), 400

    @server.errorhandler(data.SourceDown)
    def source_down(err):
        return flask.jsonify(error=str(err)), 503

    @server.get("/api/openapi.json")
    def openapi():
        return flask.jsonify(OPENAPI)

    @server.get("/api/alerts")
    def list_alerts():
        query = _query({"domain", "severity", "status", "since", "limit", "cursor"})
        page = data.alerts_page(
            app_ctx.source,
            domains=_choices(query, "domain", DOMAINS), severities=_choices(query, "severity", data.SEVERITIES),
            statuses=_choices(query, "status", data.STATUSES), since=_since(query.get("since")),
            limit=_limit(query.get("limit")), after=_cursor(query.get("cursor")))
        return flask.jsonify(alerts=[_jsonable(a) for a in page.alerts],
                             nextCursor=None if page.last is None else _encode_cursor(page.last))

    @server.get("/api/alerts/<alert_id>")
    def get_alert(alert_id):
        _query(set())
        found = data.alert_record(app_ctx.source, alert_id)
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
        # With login on, the analyst is who logged in, whatever the body says.
        given = flask.request.authorization
        analyst = given.username if app_ctx.auth is not None and given is not None else _text(body, "analyst")
        if not (analyst or "").strip():
            raise BadRequest("analyst is required (who takes the action)")
        if data.alert_record(app_ctx.source, alert_id, related=False) is None:
            return flask.jsonify(error=f"no alert with id {alert_id!r}"), 404
        try:
            row = data.apply_action(app_ctx.source, alert_id, action, analyst, note)
        except UserError as err:
            raise BadRequest(str(err)) from None
        return flask.jsonify(_jsonable(row | {"action": action})), 201

    @server.post("/api/test/execute")
    def execute_test():
        body = _body({"domain", "loadLevel", "fraudShare", "durationS"})
        form = not flask.request.is_json
        try:
            request = app_ctx.load_tests.validate(
                body.get("domain"), body.get("loadLevel"),
                _number(body.get("fraudShare"), float) if form else body.get("fraudShare"),
                _number(body.get("durationS", "60"), int) if form else body.get("durationS", 60))
        except UserError as err:
            raise BadRequest(str(err)) from None
        test_id = app_ctx.load_tests.start(request)
        return flask.jsonify(testId=test_id, status="started"), 202

    @server.get("/api/test/<test_id>")
    def test_status(test_id):
        _query(set())
        process = app_ctx.load_tests.process_state(test_id)
        try:
            run = data.load_test_run(app_ctx.source, test_id)
        except data.SourceDown as err:
            return flask.jsonify(error=str(err), process=process), 503
        if run is None and process is None:
            return flask.jsonify(error=f"no load test {test_id!r}"), 404
        return flask.jsonify(run=None if run is None else _jsonable(run), process=process)


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
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


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


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"since must be an ISO 8601 time such as 2026-12-04T10:00:00Z, got {value!r}") from None
    return since if since.tzinfo else since.replace(tzinfo=timezone.utc)


def _limit(value: str | None) -> int:
    if value is None:
        return 100
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}, got {value!r}")
    return int(value)


def _encode_cursor(last: tuple[datetime, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps([last[0].isoformat(), last[1]]).encode()).decode()


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    """The (last_seen, alert_id) a page ended at, from the ``nextCursor`` the previous page gave."""
    if value is None:
        return None
    try:
        seen, alert_id = json.loads(base64.urlsafe_b64decode(value.encode()))
        return datetime.fromisoformat(seen), str(alert_id)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise BadRequest("cursor is not one this API returned") from None


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
}
_SUMMARY_FIELDS = ["alert_id", "domain", "actor_id", "alert_type", "severity", "status", "max_score", "txn_count",
                   "total_amount", "first_seen", "last_seen", "model_version", "status_by", "status_at"]
_TRANSACTION = {"type": "object", "required": ["transaction_id", "event_time", "amount", "fraud_score"], "properties": {
    "transaction_id": {"type": "string"}, "event_time": _TIME, "amount": _AMOUNT,
    "currency": _nullable({"type": "string"}), "fraud_score": {"type": "number"},
    "predicted_class": {"type": "string"}, "quality_flags": {"type": "array", "items": {"type": "string"}},
    "produced_at": _TIME, "batch_id": {"type": "integer"},
    "top_features": {"$ref": "#/components/schemas/TopFeatures"}}}
_ACTION = {"type": "object", "required": ["action", "actor", "at"], "properties": {
    "action": {"type": "string", "enum": list(ACTIONS)}, "note": _nullable({"type": "string"}),
    "actor": {"type": "string"}, "at": _TIME}}
_ERRORS = {str(code): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
           for code, text in ((400, "bad input, with the reason"), (503, "PostgreSQL unavailable"))}
_JSON_OR_FORM = lambda schema: {"required": True, "content": {  # noqa: E731
    "application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": schema}}}
_NOT_FOUND = {"description": "no such alert",
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _list_param(name: str, allowed) -> dict:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": True,
            "description": "repeat to match any of several (default: all)",
            "schema": {"type": "array", "items": {"type": "string", "enum": list(allowed)}}}


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
                {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "nextCursor of the previous page"}],
            "responses": {"200": {"description": "a page of alerts", "content": {"application/json": {"schema": {
                "type": "object", "required": ["alerts", "nextCursor"], "properties": {
                    "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/AlertSummary"}},
                    "nextCursor": _nullable({"type": "string"})}}}}}, **_ERRORS}}},
        "/api/alerts/{alert_id}": {"get": {
            "operationId": "getAlert", "summary": "An alert with its related transactions and actions",
            "parameters": [_ALERT_ID],
            "responses": {"200": {"description": "the alert", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Alert"}}}}, "404": _NOT_FOUND, **_ERRORS}}},
        "/api/alerts/{alert_id}/actions": {"post": {
            "operationId": "actOnAlert", "summary": "Acknowledge, confirm fraud, mark a false positive, or note",
            "parameters": [_ALERT_ID],
            "requestBody": _JSON_OR_FORM({"type": "object", "required": ["action"], "additionalProperties": False,
                                          "properties": {
                                              "action": {"type": "string", "enum": list(ACTIONS)},
                                              "note": {"type": "string", "maxLength": MAX_NOTE_CHARS},
                                              "analyst": {"type": "string", "description":
                                                          "who acts (ignored when login is on: the logged-in user)"}}}),
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
            "requestBody": _JSON_OR_FORM({"type": "object", "required": ["domain", "loadLevel"],
                                          "additionalProperties": False, "properties": {
                                              "domain": {"type": "string", "enum": [*DOMAINS, "all"]},
                                              "loadLevel": {"type": "string"},
                                              "fraudShare": {"type": "number", "minimum": 0, "maximum": 1},
                                              "durationS": {"type": "integer", "minimum": 1,
                                                            "maximum": data.MAX_LOAD_TEST_S}}}),
            "responses": {"202": {"description": "started", "content": {"application/json": {"schema": {
                "type": "object", "required": ["testId", "status"],
                "properties": {"testId": {"type": "string"}, "status": {"type": "string"}}}}}}, **_ERRORS}}},
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
