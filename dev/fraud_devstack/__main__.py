"""``python -m fraud_devstack up|down|status [--json]``: run the local Kafka + PostgreSQL."""

import json

from fraud.cli import ArgumentParser, run
from fraud.config import load_config
from fraud_devstack import default_stack


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m fraud_devstack",
        description="Start, stop or inspect the local stack: a real Kafka broker (KRaft) and a real "
        "PostgreSQL, both on 127.0.0.1, state under var/stack (FRAUD_STACK_DIR).",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    stack = default_stack()
    if args.command == "down":
        stack.down()
        status = stack.status(config)
    elif args.command == "up":
        status = stack.up(config)
    else:
        status = stack.status(config)

    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for service in ("kafka", "postgres"):
            info = status[service]
            where = info.get("bootstrap") or info.get("dsn") or "-"
            print(f"{service:9} {'healthy' if info['healthy'] else 'down':8} {where}")
        print(f"lake      {status['lake_root']}\ncheckpts  {status['checkpoint_root']}")
    if args.command == "up" and not (status["kafka"]["healthy"] and status["postgres"]["healthy"]):
        return 1
    return 0


if __name__ == "__main__":
    run(main)
