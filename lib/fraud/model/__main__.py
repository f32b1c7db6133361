"""``python -m fraud.model show|list|promote VERSION|rollback [--json]``: inspect and move the registry."""

import json

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import load_config
from fraud.model.versions import promote_version, rollback_version, summary
from fraud.registry import Registry


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud.model", description="Inspect and move the model registry.")
    parser.add_argument("command", choices=["show", "list", "promote", "rollback"])
    parser.add_argument("version", nargs="?", help="version to promote (e.g. v0002)")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
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
    elif args.command == "promote":
        if not args.version:
            raise UserError("promote needs a version, e.g. `python -m fraud.model promote v0002`")
        out = promote_version(config, args.version)
    else:
        out = rollback_version(config)
    print(json.dumps(out, indent=2) if args.json else out)
    return 0


if __name__ == "__main__":
    run(main)
