"""``python -m fraud.model show|list|promote VERSION|rollback|drift [--json]``: inspect and move the
registry; ``drift`` measures the last ``--window-minutes`` of the lake against the current model's
training reference (fraud.drift), stores it in PostgreSQL and prints it."""

import json

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import load_config
from fraud.model.versions import promote_version, rollback_version, summary
from fraud.registry import Registry


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud.model",
                            description="Inspect and move the model registry; measure drift against the current model.")
    parser.add_argument("command", choices=["show", "list", "promote", "rollback", "drift"])
    parser.add_argument("version", nargs="?", help="version to promote (e.g. v0002)")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--window-minutes", type=int, default=60, help="drift: the live window (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.window_minutes < 1:
        raise UserError("--window-minutes must be at least 1")
    config = load_config(args.config)
    registry = Registry.for_config(config)

    if args.command == "show":
        entry = registry.current()
        if entry is None:
            raise UserError(f"no current model in {registry.root_uri}: train one with jobs/train_model.py")
        out = summary(entry)
    elif args.command == "list":
        current = registry.current_version()
        out = [{"version": v, "current": v == current,
                "macro_f1": registry.entry(v).metadata["metrics"]["macro_f1"]} for v in registry.versions()]
    elif args.command == "drift":
        out = drift(config, registry, args.window_minutes)
    elif args.command == "promote":
        if not args.version:
            raise UserError("promote needs a version, e.g. `python -m fraud.model promote v0002`")
        out = promote_version(config, args.version)
    else:
        out = rollback_version(config)
    print(json.dumps(out, indent=2) if args.json else out)
    return 0


def drift(config, registry: Registry, window_minutes: int) -> dict:
    """The current model's drift over the last ``window_minutes`` (fraud.drift), recorded in PostgreSQL."""
    entry = registry.current()
    if entry is None:
        raise UserError(f"no current model in {registry.root_uri}: train one with jobs/train_model.py")
    reference = entry.metadata.get("drift_reference")
    if reference is None:
        raise UserError(f"model {entry.version} has no drift reference (registered before drift was measured):"
                        " retrain to get one")
    from fraud.db import connect, postgres_dsn
    from fraud.drift import live_window, record
    from fraud.spark import build_session

    spark = build_session(config, app_name="fraud-drift")
    measured = live_window(spark, config, reference, entry.version, window_minutes)
    with connect(postgres_dsn(config)) as conn:
        record(conn, measured)
    return measured.as_dict()


if __name__ == "__main__":
    run(main)
