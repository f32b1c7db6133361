"""The app's HTTP surface: the load-test endpoint, login, binding rules, the CLI."""

import base64
import os
import re
import subprocess
import sys
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
import yaml

from dash_app.app import check_exposure, create_app
from dash_support import TOP_FEATURES, seeded  # noqa: F401  (fixture)
from fraud.cli import UserError
from fraud_devstack.process import free_port, wait_until
from pipeline_support import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(seeded):  # noqa: F811
    app = create_app("conf/local.yaml", seeded.environ)
    yield app
    app.server.extensions["fraud_dash"].load_tests.stop_all()
    app.server.extensions["fraud_dash"].source.close()


@pytest.mark.parametrize("body, message", [
    ({"domain": "moon", "loadLevel": "mini"}, "domain must be one of gaming, fintech, ecommerce or all"),
    ({"domain": "gaming", "loadLevel": "extreme"}, "loadLevel must be one of mini, normal, peak, crisis"),
    ({"loadLevel": "mini"}, "domain must be one of"),
    ({"domain": "all", "loadLevel": "mini", "fraudShare": 1.5}, "fraudShare must be a number between 0 and 1"),
    ({"domain": "all", "loadLevel": "mini", "durationS": 0}, "durationS must be a whole number"),
    ({"domain": "all", "loadLevel": "mini", "rate": 5}, "unknown field 'rate'"),
    ([1, 2], "expected a JSON object"),
])
def test_execute_rejects_bad_requests(app, body, message):
    response = app.server.test_client().post("/api/test/execute", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_execute_starts_a_simulator_run(app, seeded):  # noqa: F811
    client = app.server.test_client()
    response = client.post("/api/test/execute", json={"domain": "gaming", "loadLevel": "mini", "durationS": 13})
    assert response.status_code == 202
    test_id = response.get_json()["testId"]
    assert test_id.startswith("dash-")

    def run_status():
        with psycopg.connect(seeded.dsn) as conn:
            row = conn.execute("SELECT status, domains, load_level FROM simulation_runs WHERE test_id = %s",
                               (test_id,)).fetchone()
        return row

    # mini = 5 events/min: 13 s is one event, then the run completes.
    assert wait_until(lambda: (run_status() or ("",))[0] == "completed", 90, interval_s=0.5), \
        client.get(f"/api/test/{test_id}").get_json()
    assert run_status() == ("completed", ["gaming"], "mini")
    # The run row is final just before the simulator process exits.
    assert wait_until(lambda: not client.get(f"/api/test/{test_id}").get_json()["process"]["running"], 30)
    state = client.get(f"/api/test/{test_id}").get_json()
    assert state["run"]["status"] == "completed" and state["run"]["events_sent"] == 1
    # 3: the simulator's "could not keep the rate" warning, which a one-event run may well print.
    assert state["process"]["running"] is False and state["process"]["exit_code"] in (0, 3)
    assert client.get("/api/test/nope").status_code == 404


def test_form_encoded_execute_as_the_replaced_systems_scripts_send_it(app):
    """Its documented call: curl -X POST .../api/test/execute -d "domain=gaming&loadLevel=normal"."""
    client = app.server.test_client()
    response = client.post("/api/test/execute", data="domain=gaming&loadLevel=normal",
                           content_type="application/x-www-form-urlencoded")
    app.server.extensions["fraud_dash"].load_tests.stop_all()  # the test is the 202, not the 60-s run
    assert response.status_code == 202 and response.get_json()["testId"].startswith("dash-")
    for body, message in [("domain=gaming&loadLevel=normal&fraudShare=lots", "fraudShare must be a number"),
                          ("domain=gaming&loadLevel=normal&durationS=2.5", "durationS must be a whole number"),
                          ("domain=gaming&loadLevel=normal&rate=5", "unknown field 'rate'")]:
        response = client.post("/api/test/execute", data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400 and message in response.get_json()["error"], body
    response = client.post("/api/test/execute", data="domain=gaming", content_type="text/plain")
    assert response.status_code == 400 and "application/x-www-form-urlencoded" in response.get_json()["error"]


def test_alert_api_pages_filters_and_details(app, seeded):  # noqa: F811
    client = app.server.test_client()

    def ids(query: str):
        response = client.get(f"/api/alerts?{query}")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return [a["alert_id"] for a in body["alerts"]], body["next"]

    newest_first = [seeded.gaming, seeded.fintech, seeded.ecommerce, seeded.gaming_old]
    assert ids("") == (newest_first, None)
    first, position = ids("limit=2")
    assert first == newest_first[:2] and position["beforeId"] == seeded.fintech
    assert ids("limit=2&" + urlencode(position)) == (newest_first[2:], None)
    assert ids("before=" + urlencode({"": position["before"]})[1:]) == (newest_first[2:], None)  # by time alone
    assert ids("domain=fintech&domain=ecommerce")[0] == [seeded.fintech, seeded.ecommerce]
    assert ids("status=acknowledged")[0] == [seeded.ecommerce]
    assert ids("severity=critical")[0] == [seeded.gaming]
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"since={since}")[0] == newest_first[:3]

    detail = client.get(f"/api/alerts/{seeded.gaming}").get_json()
    assert detail["severity"] == "critical" and detail["total_amount"] == "300.0000"
    assert [t["amount"] for t in detail["transactions"]] == ["100.0000"] * 3 and detail["actions"] == []
    assert detail["class_probabilities"]["fraud_gold_farming"] == 0.95
    assert detail["top_features"] == TOP_FEATURES  # why it fired (fraud.driver_scorer)
    assert [t["top_features"] for t in detail["transactions"]] == [[]] * 3  # seeded without
    assert client.get("/api/alerts/no-such-alert").status_code == 404
    # Under /api/ only the API answers (Dash serves its page for any other GET path).
    assert client.get(f"/api/alerts/{seeded.gaming}/actions").status_code == 405
    assert client.options(f"/api/alerts/{seeded.gaming}/actions").headers["Allow"] == "OPTIONS, POST"
    assert client.get("/api/nothing-here").get_json() == {"error": "no API at /api/nothing-here"}

    for query, message in [("domain=moon", "domain must be one of gaming, fintech, ecommerce, got 'moon'"),
                           ("limit=0", "limit must be a whole number from 1 to 500"),
                           ("limit=abc", "limit must be a whole number"),
                           ("since=yesterday", "since must be an ISO 8601 time"),
                           ("before=soon", "before must be an ISO 8601 time"),
                           ("colour=red", "unknown parameter 'colour'")]:
        response = client.get(f"/api/alerts?{query}")
        assert response.status_code == 400 and message in response.get_json()["error"], query


def test_alert_actions_by_json_and_form_with_who_and_when(app, seeded):  # noqa: F811
    client = app.server.test_client()
    url = f"/api/alerts/{seeded.gaming_old}/actions"
    response = client.post(url, json={"action": "acknowledge", "analyst": "bo"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json() | {"status_at": None} == {
        "alert_id": seeded.gaming_old, "status": "acknowledged", "status_by": "bo", "analyst_note": None,
        "status_at": None, "action": "acknowledge"}
    response = client.post(url, data={"action": "note", "note": "called the player", "analyst": "bo"})
    assert response.status_code == 201 and response.get_json()["analyst_note"] == "called the player"
    actions = client.get(f"/api/alerts/{seeded.gaming_old}").get_json()["actions"]
    assert [(a["action"], a["actor"], a["note"]) for a in actions] == [
        ("acknowledge", "bo", None), ("note", "bo", "called the player")]
    assert datetime.fromisoformat(actions[0]["at"]) > datetime.now(timezone.utc) - timedelta(minutes=1)

    for body, status, message in [({"action": "escalate", "analyst": "bo"}, 400, "action must be one of"),
                                  ({"action": "note", "analyst": "bo"}, 400, "a note action needs a note"),
                                  ({"action": "acknowledge"}, 400, "analyst is required"),
                                  ({"action": "acknowledge", "analyst": "bo", "by": "x"}, 400, "unknown field 'by'"),
                                  ({"action": 3, "analyst": "bo"}, 400, "action must be a string")]:
        response = client.post(url, json=body)
        assert response.status_code == status and message in response.get_json()["error"], body
    assert client.post("/api/alerts/nope/actions", json={"action": "acknowledge", "analyst": "bo"}).status_code == 404


SCHEMATHESIS = ROOT / ".venv-schemathesis" / "bin" / "schemathesis"


def test_schemathesis_finds_no_failure_against_the_running_app(app, tmp_path):
    """Every operation of /api/openapi.json but the one that starts simulator runs, with generated
    valid and invalid input, against the app served over HTTP: answers conform to the document
    (status codes, content types, schemas), no server error, invalid input refused."""
    from werkzeug.serving import make_server

    if not SCHEMATHESIS.exists():
        pytest.fail(f"{SCHEMATHESIS} missing: run `make setup` (scripts/setup.sh installs schemathesis there)")
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [str(SCHEMATHESIS), "--no-color", "run", f"http://127.0.0.1:{server.server_port}/api/openapi.json",
             "--checks", "all", "--exclude-operation-id", "startLoadTest", "--max-examples", "40",
             "--seed", "20261204"], capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache there
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "4 selected / 5 total" in result.stdout  # every operation but startLoadTest
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) >= 200, result.stdout[-2000:]


def _config_with_login(tmp_path):
    raw = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    raw["dashboard"]["auth_user_env"] = "TEST_DASH_USER"
    raw["dashboard"]["auth_password_env"] = "TEST_DASH_PASSWORD"
    path = tmp_path / "login.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_login_when_configured(seeded, tmp_path):  # noqa: F811
    path = _config_with_login(tmp_path)
    with pytest.raises(UserError, match="TEST_DASH_USER is not set"):
        create_app(path, seeded.environ)
    app = create_app(path, {**seeded.environ, "TEST_DASH_USER": "ana", "TEST_DASH_PASSWORD": "pw-canary"})
    client = app.server.test_client()
    assert client.get("/").status_code == 401
    assert client.post("/api/test/execute", json={}).status_code == 401
    wrong = base64.b64encode(b"ana:nope").decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    good = base64.b64encode(b"ana:pw-canary").decode()
    assert client.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
    assert client.get("/api/alerts").status_code == 401 and client.get("/api/openapi.json").status_code == 401
    assert client.get("/api/alerts", headers={"Authorization": f"Basic {good}"}).status_code == 200
    # With login on, the analyst on an action is who logged in, not what the body claims.
    response = client.post(f"/api/alerts/{seeded.fintech}/actions", json={"action": "acknowledge", "analyst": "mallory"},
                           headers={"Authorization": f"Basic {good}"})
    assert response.status_code == 201 and response.get_json()["status_by"] == "ana"
    check_exposure("0.0.0.0", app)  # allowed: login is on


def test_no_page_of_another_site_can_post_or_rebind_the_app(app, seeded):  # noqa: F811
    """In local no-login mode any page the analyst visits could otherwise post verdicts or start
    crisis-level load tests: a cross-site request is refused whatever its body, and so is a Host
    the app does not serve (a name of another site that resolves to loopback)."""
    client = app.server.test_client()
    url = f"/api/alerts/{seeded.ecommerce}/actions"
    verdict = {"action": "confirm_fraud", "analyst": "eve"}
    run = {"domain": "gaming", "loadLevel": "crisis", "durationS": 600}
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    before = client.get(f"/api/alerts/{seeded.ecommerce}").get_json()["actions"]
    runs = len(app.server.extensions["fraud_dash"].load_tests._procs)
    for path, form in ((url, verdict), ("/api/test/execute", run)):
        assert client.post(path, data=form, headers=evil).status_code == 403, "a form another site's page posts"
        assert client.post(path, json=form, headers={"Origin": "https://evil.example"}).status_code == 403
        assert client.post(path, json=form, headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert client.get(f"/api/alerts/{seeded.ecommerce}").get_json()["actions"] == before, "nothing was written"
    assert len(app.server.extensions["fraud_dash"].load_tests._procs) == runs, "no load test was started"
    rebound = client.get("/api/alerts", headers={"Host": "evil.example:8050"})
    assert rebound.status_code == 400 and "dashboard.trusted_hosts" in rebound.get_json()["error"]
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "10.0.1.7:8050"}).status_code == 200, "the load balancer's check"
    # The app's own pages (same origin) and callers without a browser pass the guard (400: the body).
    bad = {"domain": "crypto", "loadLevel": "mini"}
    for headers in ({"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"}, {}):
        response = client.post("/api/test/execute", json=bad, headers=headers)
        assert response.status_code == 400 and "domain" in response.get_json()["error"], headers
    assert client.get("/api/alerts", headers={"Host": "[::1]:8050"}).status_code == 200


def test_no_login_binds_loopback_only(app):
    check_exposure("127.0.0.1", app)
    check_exposure("localhost", app)
    with pytest.raises(UserError, match="refusing to listen on 0.0.0.0 without a login"):
        check_exposure("0.0.0.0", app)


GUNICORN = [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:dash_app.gunicorn_conf", "dash_app.app:server"]


def test_under_gunicorn_the_exposure_guard_runs_and_the_health_check_answers(tmp_path):
    """The image's server (dash_app/Dockerfile): no login, so 0.0.0.0 is refused in one line before
    binding; on loopback it serves, and /healthz answers without touching the database."""
    env = {**os.environ, "FRAUD_DASH_CONFIG": "conf/local.yaml", "FRAUD_DASH_RUN_DIR": str(tmp_path)}
    refused = subprocess.run(GUNICORN, env={**env, "FRAUD_DASH_BIND": "0.0.0.0:8999"}, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "error: refusing to listen on 0.0.0.0 without a login" in refused.stderr
    port = free_port()
    server = subprocess.Popen(GUNICORN, env={**env, "FRAUD_DASH_BIND": f"127.0.0.1:{port}"}, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def health():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    return response.status == 200 and response.read() == b"ok\n"
            except OSError:
                return False

        assert wait_until(health, 120, interval_s=0.5), "gunicorn never served /healthz"
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0, server.stderr.read()[-2000:]


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "error: --port must be between 1 and 65535"),
    (["--port", "abc"], "error: argument --port: invalid int value"),
    (["--config", "missing.yaml"], "error: config file not found"),
    (["--host", "0.0.0.0", "--port", "8999"], "error: refusing to listen on 0.0.0.0"),
])
def test_cli_bad_arguments_are_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "dash_app", *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_module_import_builds_nothing():
    result = subprocess.run(
        [sys.executable, "-c", "import dash_app.app as m; assert m._app is None; "
         "from flask import Flask; assert isinstance(m.server, Flask); assert m._app is not None"],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
