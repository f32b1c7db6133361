"""``python -m fraud.model show|list|promote VERSION|rollback|challenger VERSION|none|compare|drift
[--json]``: inspect and move the registry. ``challenger`` sets the version the stream scores in
shadow beside the current one (fraud.shadow), ``compare`` shows both on the traffic scored by both;
``drift`` measures the last ``--window-minutes`` of the lake against the current model's training
reference (fraud.drift), stores it in PostgreSQL and prints it."""


from fraud.cli import ArgumentParser, UserError, report, run
from fraud.config import load_config
from fraud.model.versions import promote_version, rollback_version, summary
from fraud.registry import Registry


def operator() -> str:
    """Who runs the CLI, for the record of a moved pointer (model_pointer_changes)."""
    import getpass

    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown (cli)"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m fraud.model",
                            description="Inspect and move the model registry; measure drift against the current model.")
    parser.add_argument("command", choices=["show", "list", "promote", "rollback", "challenger", "compare", "drift"])
    parser.add_argument("version", nargs="?",
                        help="promote: the version (e.g. v0002); challenger: the version, or `none` to stop")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
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
        check_features(entry)
        out = summary(entry)
    elif args.command == "list":
        current, challenger = registry.current_version(), registry.challenger_version()
        out = [{"version": v, "current": v == current, "challenger": v == challenger,
                "macro_f1": registry.entry(v).metadata["metrics"]["macro_f1"]} for v in registry.versions()]
    elif args.command == "challenger":
        if not args.version:
            raise UserError("challenger needs a version, or `none`: `python -m fraud.model challenger v0002`")
        out = registry.set_challenger(None if args.version == "none" else args.version)
    elif args.command == "compare":
        out = compare(config, registry)
    elif args.command == "drift":
        out = drift(config, registry, args.window_minutes)
    elif args.command == "promote":
        if not args.version:
            raise UserError("promote needs a version, e.g. `python -m fraud.model promote v0002`")
        out = promote_version(config, args.version, "batch", operator())
    else:
        out = rollback_version(config, "batch", operator())
    report(out, args.json)
    return 0


def check_features(entry) -> None:
    """A model trained on other features than this code computes cannot be scored (the driver's scorer
    refuses it): say so, and how to get one that can."""
    from fraud.model.forest import FEATURE_COLUMNS

    features = entry.metadata.get("features")
    if features is not None and features != FEATURE_COLUMNS:
        raise UserError(f"the current model {entry.version} was trained on other features than this code computes"
                        f" ({len(features)} against {len(FEATURE_COLUMNS)}): train a new one from silver this code"
                        " wrote (locally: make clean-state, then make demo)")


def compare(config, registry: Registry) -> dict:
    """The current model and the challenger (the one set, else the last one set) on the traffic the
    stream scored with both (fraud.shadow)."""
    from fraud.db import connect, postgres_dsn
    from fraud.shadow import compare_with_challenger

    champion = registry.current_version()
    if champion is None:
        raise UserError(f"no current model in {registry.root_uri}: train one with jobs/train_model.py")
    with connect(postgres_dsn(config, "batch")) as conn:
        compared = compare_with_challenger(conn, champion, registry.challenger_version())
    if compared is None:
        raise UserError(f"no challenger was scored beside {champion}: set one with"
                        " `python -m fraud.model challenger VERSION`")
    return compared


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
    with connect(postgres_dsn(config, "batch")) as conn:
        record(conn, measured)
    return measured.as_dict()


if __name__ == "__main__":
    run(main)
