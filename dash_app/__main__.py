"""``python -m dash_app [--port N] [--host H] [--config conf/local.yaml]``."""

from dash_app.app import DEFAULT_CONFIG, run
from fraud.cli import ArgumentParser, run as run_cli


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m dash_app",
                            description="The fraud monitoring Dash app (live alerts, alert detail, load tests, "
                            "model, pipeline) over PostgreSQL and the model registry.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    parser.add_argument("--host", help="address to bind (default: dashboard.host, 127.0.0.1); anything but "
                        "loopback needs the login configured")
    parser.add_argument("--port", type=int, help="port (default: dashboard.port)")
    args = parser.parse_args(argv)
    run(args.config, args.host, args.port)
    return 0


if __name__ == "__main__":
    run_cli(main)
