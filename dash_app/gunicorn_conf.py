"""gunicorn settings of the Dash app's image (``dash_app/Dockerfile``):

    gunicorn -c python:dash_app.gunicorn_conf dash_app.app:server

The app is built from ``$FRAUD_DASH_CONFIG``; before gunicorn binds, the exposure guard
(``dash_app.app.check_exposure``) checks every address it would listen on, as ``python -m
dash_app`` does: beyond loopback only with a login configured.
"""

import os
import sys

bind = [os.environ.get("FRAUD_DASH_BIND", "127.0.0.1:8050")]
# One worker: the load tests it starts are its own subprocesses, and their count (the cap,
# dashboard.max_concurrent_load_tests) and state live in that process. Threads serve the rest.
workers = 1
threads = 8
timeout = 60
accesslog = "-"


def on_starting(server) -> None:
    from dash_app.app import app, check_exposure
    from fraud.cli import UserError

    for address in server.cfg.bind:
        host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
        try:
            check_exposure(host, app)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)
