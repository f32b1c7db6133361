"""Who is asking, and what they may do: viewer < analyst < admin.

Three ways in, from the config:

- ``dashboard.oidc`` (AWS): the ALB has signed the user in with the identity provider and sends
  its claims as a JWT in ``x-amzn-oidc-data`` (ES256). The app verifies the signature with the
  ALB's public key for the token's ``kid`` (fetched from the regional key endpoint, cached), the
  ``signer`` (this ALB's ARN) and the expiry, takes the user from ``email`` (else ``sub``) and the
  role from the groups claim. A request without a valid token gets 401; the ALB is the only way
  in (its security group), so a forged header is the only attack left, and the signature stops it.
  A user in none of the configured groups is refused (403), and so is an ``email`` the identity
  provider has not verified.
- basic auth (``dashboard.auth_user_env`` / ``auth_password_env``): one shared login, admin.
- neither: loopback only (``check_exposure``), admin, the analyst's name typed in the form.

Analyst actions (verdicts become training labels) need ``analyst``; promote, rollback,
challenger changes and load tests need ``admin``.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

import flask

from fraud.cli import UserError
from fraud.config import Config

ROLES = ("viewer", "analyst", "admin")
OIDC_HEADER = "x-amzn-oidc-data"
_ALB_ARN = re.compile(r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer/app/[\w-]+/[0-9a-f]+")
HEALTH_PATH = "/healthz"  # the load balancer's health check: no login, no data
_KID = re.compile(r"[A-Za-z0-9-]{1,128}")
# A host name or an IP address as a Host header names it (no port).
_HOST_NAME = re.compile(r"[a-z0-9.-]+|[0-9a-f]*:[0-9a-f]*:[0-9a-f:]*")


@dataclass(frozen=True)
class Identity:
    user: str | None  # None: no login (loopback), the form names the analyst
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


LOCAL = Identity(None, "admin")


class Unauthorized(Exception):
    """No valid login on the request (401)."""


class Forbidden(Exception):
    """A valid login that may not use the app at all (403)."""


class Login:
    """The configured way in; ``identify()`` the current Flask request, or raise Unauthorized."""

    def __init__(self, config: Config, basic: tuple[str, str] | None):
        self.oidc = config.dashboard.oidc
        self.basic = basic
        if self.oidc is not None and not _ALB_ARN.fullmatch(self.oidc.alb_arn):
            raise UserError(f"{config.source_path}: dashboard.oidc.alb_arn must be an application load balancer's"
                            f" ARN (FRAUD_DASH_ALB_ARN), got {self.oidc.alb_arn!r}")
        self._keys: dict[str, object] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # kid -> (until, why): fetches that failed lately
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.oidc is not None or self.basic is not None

    def identify(self) -> Identity:
        if self.oidc is not None:
            token = flask.request.headers.get(OIDC_HEADER)
            if not token:
                raise Unauthorized(f"no {OIDC_HEADER} header: sign in through the load balancer")
            return self.from_token(token)
        if self.basic is not None:
            user, password = self.basic
            given = flask.request.authorization
            if (given is not None and given.type == "basic"
                    and hmac.compare_digest((given.username or "").encode(), user.encode())
                    and hmac.compare_digest((given.password or "").encode(), password.encode())):
                return Identity(user, "admin")
            raise Unauthorized("login required")
        return LOCAL

    def from_token(self, token: str) -> Identity:
        """The identity in an ALB OIDC token, verified (signature by ``kid``, signer, expiry)."""
        import jwt

        oidc = self.oidc
        # The ALB pads its base64url segments; standard JWT libraries refuse the padding.
        token = ".".join(part.rstrip("=") for part in token.split("."))
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as err:
            raise Unauthorized(f"malformed token: {err}") from None
        if header.get("alg") != "ES256":
            raise Unauthorized(f"token algorithm {header.get('alg')!r} is not ES256")
        if header.get("signer") != oidc.alb_arn:
            raise Unauthorized("token not signed by this load balancer")
        key = self._public_key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(token, key, algorithms=["ES256"], leeway=oidc.max_clock_skew_s,
                                options={"require": ["exp"], "verify_aud": False})
        except jwt.InvalidTokenError as err:
            raise Unauthorized(f"invalid token: {err}") from None
        user = claims.get("email") or claims.get("sub")
        if not user:
            raise Unauthorized("token names no user (email or sub)")
        if (claims.get("email") and oidc.require_verified_email
                and claims.get("email_verified") not in (True, "true")):
            raise Forbidden(f"{user}: the identity provider has not verified this email address")
        groups = claims.get(oidc.groups_claim) or []
        groups = set(groups.split(",") if isinstance(groups, str) else groups)
        role = ("admin" if groups & set(oidc.admin_groups) else
                "analyst" if groups & set(oidc.analyst_groups) else
                "viewer" if groups & set(oidc.viewer_groups) else None)
        if role is None:
            raise Forbidden(f"{user} is in none of the app's groups ({', '.join(oidc.viewer_groups)} to read)")
        return Identity(str(user), role)

    def _public_key(self, kid: str):
        """The ALB's public key for ``kid`` (PEM from the key endpoint), fetched once per kid. The fetch
        runs outside the lock (a slow endpoint holds up only the requests with that kid), and a
        failure is remembered for ``key_failure_ttl_s``."""
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        if not _KID.fullmatch(kid):
            raise Unauthorized("token has no usable key id")
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            now = time.monotonic()
            self._failed = {k: v for k, v in self._failed.items() if v[0] > now}  # forget the expired
            until, why = self._failed.get(kid, (0.0, ""))
            if now < until:
                raise Unauthorized(f"no public key for key id {kid}: {why}")
        region = self.oidc.alb_arn.split(":")[3]  # arn:aws:elasticloadbalancing:REGION:...
        url = self.oidc.public_keys_url.format(region=region, kid=kid)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (https in config)
                key = load_pem_public_key(response.read())
        except (OSError, ValueError) as err:
            with self._lock:
                self._failed[kid] = (time.monotonic() + self.oidc.key_failure_ttl_s, str(err))
            raise Unauthorized(f"no public key for key id {kid}: {err}") from None
        with self._lock:
            self._failed.pop(kid, None)
            return self._keys.setdefault(kid, key)


def current(login: Login | None) -> Identity:
    """The identity of the request being served (``LOCAL`` outside one or without a login)."""
    if login is None or not login.enabled or not flask.has_request_context():
        return LOCAL
    identity = getattr(flask.g, "fraud_identity", None)
    return identity if identity is not None else login.identify()


_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def refuse_other_sites(server: flask.Flask, trusted_hosts: tuple[str, ...]) -> None:
    """Every request but the health check names a trusted host (400 otherwise: DNS rebinding), and a
    request that changes something comes from this app's own pages or from no browser at all (403
    otherwise: cross-site request forgery). Browsers send ``Origin`` with every cross-origin POST,
    form posts included, and ``Sec-Fetch-Site``; a script without either (curl, the replaced
    system's callers) is not a browser a page could drive."""
    trusted = {h.lower() for h in trusted_hosts}
    wrong = sorted(h for h in trusted if not _HOST_NAME.fullmatch(h))
    if not trusted or wrong:
        raise UserError("dashboard.trusted_hosts (FRAUD_DASH_TRUSTED_HOSTS, comma-separated) must list the host names"
                        f" the app answers to, without ports; got {list(trusted_hosts)}")

    @server.before_request
    def check_site():
        if flask.request.path == HEALTH_PATH:  # the load balancer asks by the task's address
            return None
        host = flask.request.host.lower()
        name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
        if name not in trusted:
            return _refuse(400, f"host {name!r} is not served here (dashboard.trusted_hosts)")
        if flask.request.method in _SAFE_METHODS:
            return None
        origin = flask.request.headers.get("Origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc.lower() != host:
            return _refuse(403, "cross-site request refused: its Origin is another site")
        if flask.request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return _refuse(403, "cross-site request refused (Sec-Fetch-Site)")
        return None


def _refuse(status: int, message: str):
    if flask.request.path.startswith("/api/"):
        return flask.jsonify(error=message), status
    return flask.Response(f"{message}\n", status)


def require_login(server: flask.Flask, login: Login) -> None:
    """Every request but the health check carries a valid login (401 otherwise)."""

    @server.before_request
    def check_login():
        if flask.request.path == HEALTH_PATH:
            return None
        try:
            flask.g.fraud_identity = login.identify()
        except Forbidden as err:
            return _refuse(403, str(err))
        except Unauthorized as err:
            headers = {} if login.oidc else {"WWW-Authenticate": 'Basic realm="fraud monitor"'}
            if flask.request.path.startswith("/api/"):
                return flask.jsonify(error=str(err)), 401, headers
            return flask.Response(f"{err}\n", 401, headers)
        return None

