"""The Dash app: ``create_app(config_path)`` builds it; ``server`` is the Flask app for gunicorn.

``gunicorn 'dash_app.app:server'`` builds the app from ``$FRAUD_DASH_CONFIG`` (default
``conf/local.yaml``) on first access of ``server``; importing this module touches no
database. ``python -m dash_app`` calls ``run``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
from pathlib import Path

from dash import Dash

from dash_app import layout
from dash_app.api import register_api
from dash_app.callbacks import AppContext, register
from dash_app.data import DataSource, LoadTests
from dash_app.identity import HEALTH_PATH, Login, refuse_other_sites, require_login
from fraud.cli import UserError
from fraud.config import Config, load_config
from fraud.project import ROOT

DEFAULT_CONFIG = "conf/local.yaml"


def create_app(config_path: str | os.PathLike = DEFAULT_CONFIG, environ: dict[str, str] | None = None) -> Dash:
    """The app for one config; ``environ`` (default os.environ) also goes to the simulator subprocesses."""
    environ = dict(os.environ if environ is None else environ)
    config = load_config(config_path, environ)
    login = Login(config, auth_credentials(config, environ))
    run_dir = Path(environ.get("FRAUD_DASH_RUN_DIR", ROOT / "var" / "dash" / "load-tests"))
    app_ctx = AppContext(config, DataSource(config), LoadTests(config, environ, run_dir), login)
    app = Dash(__name__, title="Fraud monitor", update_title=None, suppress_callback_exceptions=True)
    app.layout = layout.shell(config.dashboard.refresh_interval_s * 1000)
    register(app, app_ctx)
    register_api(app.server, app_ctx)
    app.server.add_url_rule(HEALTH_PATH, "health", lambda: ("ok\n", 200, {"Content-Type": "text/plain"}))
    refuse_other_sites(app.server, config.dashboard.trusted_hosts)
    if login.enabled:
        require_login(app.server, login)
    app.server.extensions["fraud_dash"] = app_ctx
    return app


def auth_credentials(config: Config, environ: dict[str, str]) -> tuple[str, str] | None:
    """Basic-auth (user, password) from the env vars the config names; None when login is off."""
    user_env, password_env = config.dashboard.auth_user_env, config.dashboard.auth_password_env
    if not user_env and not password_env:
        return None
    if not (user_env and password_env):
        raise UserError(f"{config.source_path}: dashboard.auth_user_env and auth_password_env go together")
    missing = [name for name in (user_env, password_env) if not environ.get(name)]
    if missing:
        raise UserError(f"dashboard login is configured but environment variable {missing[0]} is not set")
    return environ[user_env], environ[password_env]


def check_exposure(host: str, app: Dash) -> None:
    """Refuse to serve beyond loopback without a login."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise UserError(f"--host must be an IP address or localhost, got {host!r}") from None
    if not loopback and not app.server.extensions["fraud_dash"].login.enabled:
        raise UserError(f"refusing to listen on {host} without a login: set dashboard.oidc, or "
                        "dashboard.auth_user_env and auth_password_env, in the config (or bind 127.0.0.1)")


def run(config_path: str, host: str | None, port: int | None) -> None:
    app = create_app(config_path)
    config = app.server.extensions["fraud_dash"].config
    host = host or config.dashboard.host
    port = config.dashboard.port if port is None else port
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    check_exposure(host, app)
    print(f"dash app: http://{host}:{port}/", flush=True)
    # SIGTERM (make down) unwinds like Ctrl-C, so the finally below runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        app.run(host=host, port=port, debug=False)
    finally:
        app.server.extensions["fraud_dash"].load_tests.stop_all()
        app.server.extensions["fraud_dash"].source.close()


_app: Dash | None = None


def __getattr__(name: str):
    """``server`` / ``app`` built lazily (PEP 562), so importing the module loads nothing."""
    global _app
    if name not in ("app", "server"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = create_app(os.environ.get("FRAUD_DASH_CONFIG", DEFAULT_CONFIG))
    return _app if name == "app" else _app.server
