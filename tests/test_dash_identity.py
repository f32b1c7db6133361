"""Who may do what in the Dash app (dash_app.identity) behind the ALB's OIDC login.

The test plays the load balancer: it generates its own ES256 key pairs, serves the public keys
over HTTP as the regional key endpoint does (PEM by key id), and signs tokens as the ALB does
(``signer``, ``kid``, ``exp``, padded base64url segments).
"""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import psycopg
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dash_app import callbacks
from dash_app.app import create_app
from dash_app.identity import OIDC_HEADER
from dash_support import seeded  # noqa: F401  (fixture)
from fraud.cli import UserError
from pipeline_support import ROOT

pytestmark = pytest.mark.integration

ALB = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/fraud-dev-dash/50dc6c495c0c9188"


class KeyEndpoint:
    """The ALB's public keys by key id, over HTTP on loopback."""

    def __init__(self):
        self.keys = {kid: ec.generate_private_key(ec.SECP256R1()) for kid in ("kid-1", "kid-2", "kid-slow")}
        pems = {kid: key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
                for kid, key in self.keys.items()}
        self.requests = []
        self.hold = {}  # kid -> threading.Event the endpoint waits for before it answers
        self.arrived = threading.Event()  # a held request has come in

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805
                self.requests.append(handler.path)
                kid = handler.path.rsplit("/", 1)[-1]
                if kid in self.hold:
                    self.arrived.set()
                    self.hold[kid].wait(timeout=60)
                pem = pems.get(kid)
                handler.send_response(200 if pem else 404)
                handler.end_headers()
                handler.wfile.write(pem or b"no such key")

            def log_message(handler, *args):  # noqa: N805
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/{{region}}/{{kid}}"

    def token(self, *, groups=("fraud-analysts",), email="ana@example.com", expires_in=120, kid="kid-1",
              signer=ALB, key=None, alg="ES256", email_verified=True) -> str:
        claims = {"sub": "u-1", "email": email, "email_verified": email_verified, "groups": list(groups),
                  "exp": int(time.time()) + expires_in, "iss": "https://idp.example.com"}
        headers = {"kid": kid, "signer": signer, "iss": "https://idp.example.com", "client": "c"}
        signing_key = key or self.keys[kid]
        forger_key = "a-key-anyone-could-pick-32-bytes+"  # the classic forgery: HS256 with a key of one's own
        token = jwt.encode(claims, signing_key if alg == "ES256" else forger_key, algorithm=alg, headers=headers)
        # The ALB pads each base64url segment.
        return ".".join(part + "=" * (-len(part) % 4) for part in token.split("."))


@pytest.fixture(scope="module")
def keys():
    endpoint = KeyEndpoint()
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture(scope="module")
def oidc_app(seeded, keys, tmp_path_factory):  # noqa: F811
    raw = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    raw["dashboard"]["oidc"] = {"alb_arn": ALB, "public_keys_url": keys.url}
    raw["dashboard"]["max_concurrent_load_tests"] = 1
    path = tmp_path_factory.mktemp("oidc") / "oidc.yaml"
    path.write_text(yaml.safe_dump(raw))
    app = create_app(path, seeded.environ)
    yield app
    app.server.extensions["fraud_dash"].load_tests.stop_all()
    app.server.extensions["fraud_dash"].source.close()


def signed_in(token: str) -> dict:
    return {OIDC_HEADER: token}


def test_no_forged_or_expired_token_gets_in(oidc_app, keys):
    client = oidc_app.server.test_client()
    other_key = ec.generate_private_key(ec.SECP256R1())
    refused = {
        "no header": {},
        "garbage": signed_in("not.a.token"),
        "expired": signed_in(keys.token(expires_in=-600)),
        "signed with another key": signed_in(keys.token(key=other_key)),
        "another load balancer": signed_in(keys.token(signer=ALB.replace("50dc", "6666"))),
        "HS256 with a shared secret": signed_in(keys.token(alg="HS256")),
        "unknown key id": signed_in(keys.token(kid="kid-9", key=other_key)),
    }
    for case, headers in refused.items():
        for path in ("/", "/api/alerts", "/api/openapi.json"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (case, path)
    # A claim edited after signing: the signature no longer matches.
    header, payload, signature = keys.token(groups=("fraud-analysts",)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload))
    claims["groups"] = ["fraud-admins"]
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
    assert client.get("/api/alerts", headers=signed_in(f"{header}.{tampered}.{signature}")).status_code == 401
    assert client.get("/healthz").status_code == 200, "the load balancer's health check needs no login"
    assert any(path.startswith("/eu-west-1/kid-1") for path in keys.requests), "key fetched by kid, ALB's region"


def test_roles_from_the_groups_claim(oidc_app, keys, seeded):  # noqa: F811
    client = oidc_app.server.test_client()
    viewer = signed_in(keys.token(groups=("fraud-viewers",), email="val@example.com"))
    analyst = signed_in(keys.token(groups=("fraud-analysts",), kid="kid-2"))
    admin = signed_in(keys.token(groups=("staff", "fraud-admins"), email="root@example.com"))
    action = {"action": "acknowledge", "analyst": "mallory"}

    assert client.get("/api/alerts", headers=viewer).status_code == 200, "viewers read"
    refused = client.post(f"/api/alerts/{seeded.gaming}/actions", json=action, headers=viewer)
    assert refused.status_code == 403 and "needs the analyst role" in refused.get_json()["error"]
    done = client.post(f"/api/alerts/{seeded.gaming}/actions", json=action, headers=analyst)
    assert done.status_code == 201 and done.get_json()["status_by"] == "ana@example.com", "the token's user, not the body's"

    run = {"domain": "gaming", "loadLevel": "mini", "durationS": 30}
    assert client.post("/api/test/execute", json=run, headers=analyst).status_code == 403
    assert client.post("/api/test/execute", json=run, headers=admin).status_code == 202
    busy = client.post("/api/test/execute", json=run, headers=admin)
    assert busy.status_code == 429 and "max_concurrent_load_tests" in busy.get_json()["error"]

    # The Dash pages' own actions: the same rules.
    app_ctx = oidc_app.server.extensions["fraud_dash"]
    with oidc_app.server.test_request_context(headers=analyst):
        message = callbacks.model_view(app_ctx, "v0001", "promote")[3]
        assert message == "promote refused: ana@example.com has the analyst role; it needs the admin role"
        assert callbacks.loadtest_start_view(app_ctx, "gaming", "mini", None, 30)[0].startswith("not started")
    with oidc_app.server.test_request_context(headers=viewer):
        assert "verdicts need the analyst role" in callbacks.action_view(app_ctx, seeded.gaming, "confirm_fraud",
                                                                         "val", None)
    # An admin's promotion is recorded with the admin's identity, not the app's.
    with oidc_app.server.test_request_context(headers=admin):
        assert callbacks.model_view(app_ctx, "v0002", "promote")[3] == "promote: current version is now v0002"
    with psycopg.connect(seeded.dsn) as conn:
        last = conn.execute("SELECT action, version, actor FROM model_pointer_changes ORDER BY id DESC LIMIT 1").fetchone()
    assert last == ("promote", "v0002", "root@example.com")


def test_a_user_in_no_group_or_with_an_unverified_email_is_refused(oidc_app, keys):
    client = oidc_app.server.test_client()
    for case, token in {"in no group of the app": keys.token(groups=("staff",), email="eve@example.com"),
                        "no groups at all": keys.token(groups=(), email="eve@example.com"),
                        "email not verified": keys.token(groups=("fraud-admins",), email_verified=False),
                        "email verified as a string": keys.token(groups=("fraud-admins",), email_verified="false")}.items():
        for path in ("/", "/api/alerts"):
            assert client.get(path, headers=signed_in(token)).status_code == 403, (case, path)
    verified = keys.token(groups=("fraud-viewers",), email_verified="true")  # how some providers send it
    assert client.get("/api/alerts", headers=signed_in(verified)).status_code == 200


def test_a_slow_or_failing_key_fetch_holds_up_no_other_login(oidc_app, keys):
    """The fetch of an unknown key id runs outside the lock, and its failure is remembered."""
    client = oidc_app.server.test_client()
    known = signed_in(keys.token(kid="kid-1"))
    assert client.get("/api/alerts", headers=known).status_code == 200  # kid-1 is cached from here on
    keys.hold["kid-slow"] = threading.Event()
    slow = threading.Thread(target=lambda: oidc_app.server.test_client().get(
        "/api/alerts", headers=signed_in(keys.token(kid="kid-slow"))))
    slow.start()
    try:
        assert keys.arrived.wait(timeout=30), "the slow fetch is under way"
        done = threading.Event()
        other = threading.Thread(target=lambda: (client.get("/api/alerts", headers=known), done.set()))
        other.start()
        # Well under the fetch's own 5-s timeout, after which a login queued behind the lock would pass too.
        assert done.wait(timeout=2.5), "a login with a cached key waited for another key's fetch"
    finally:
        keys.hold["kid-slow"].set()
        slow.join(timeout=60)
    unknown = signed_in(keys.token(kid="kid-404", key=keys.keys["kid-1"]))
    asked = len(keys.requests)
    assert [client.get("/api/alerts", headers=unknown).status_code for _ in range(3)] == [401] * 3
    assert len(keys.requests) == asked + 1, "one fetch for the unknown kid, then the remembered failure"


def test_a_malformed_load_balancer_arn_is_a_config_error(seeded, tmp_path):  # noqa: F811
    raw = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    raw["dashboard"]["oidc"] = {"alb_arn": "my-alb"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="dashboard.oidc.alb_arn must be an application load balancer's ARN"):
        create_app(path, seeded.environ)
