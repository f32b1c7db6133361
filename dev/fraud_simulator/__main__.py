"""``python -m fraud_simulator``: produce paced traffic to Kafka, or write history to a file."""

import json
import secrets
from pathlib import Path
from datetime import datetime, timezone

from fraud.cli import ArgumentParser, UserError, run
from fraud.config import DOMAINS, Config, load_config
from fraud_simulator.profile import load_profile
from fraud_simulator.run import RunOptions, replay_file, resolve_rate, run_simulation


def build_options(config: Config, *, domain: str, load_level: str | None, rate: float | None,
                  events: int | None, duration: float | None, fraud_rate: float | None, seed: int,
                  test_id: str | None, pattern_weights: str | None, output: str | None,
                  profile: str | None = None, finish_sequences: bool = False) -> RunOptions:
    if domain != "all" and domain not in DOMAINS:
        raise UserError(f"--domain must be one of {', '.join(DOMAINS)} or all, got {domain!r}")
    if output is None and events is None and duration is None:
        duration = 60.0
    if test_id is None:
        # File mode stays deterministic for a seed; live runs get a unique id.
        test_id = f"history-seed{seed}" if output else (
            f"run-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}")
    return RunOptions(
        domains=DOMAINS if domain == "all" else (domain,),
        rate_per_s=resolve_rate(config, load_level, rate),
        events=events, duration_s=duration, seed=seed, test_id=test_id,
        load_level=None if rate is not None else (load_level or "normal"),
        fraud_rate=None if fraud_rate is None else float(fraud_rate),
        pattern_weights=_parse_weights(pattern_weights),
        output=output,
        profile=load_profile(profile),
        finish_sequences=finish_sequences,
    )


def _parse_weights(text: str | None) -> dict[str, float]:
    """``fraud_card_testing=2,fraud_promo_abuse=0.5`` -> {name: weight}."""
    weights = {}
    for part in filter(None, (text or "").split(",")):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--pattern-weights: expected name=number, got {part!r}") from None
        if not sep:
            raise UserError(f"--pattern-weights: expected name=number, got {part!r}")
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m fraud_simulator",
        description="Simulate fintech, gaming and e-commerce transactions (16 fraud and regular patterns). "
        "Without --output: paced production to Kafka, ground truth to PostgreSQL. With --output: "
        "JSON lines to a file, unpaced and deterministic for a seed.",
    )
    parser.add_argument("--domain", default="all", help="gaming, fintech, ecommerce or all (default: all)")
    parser.add_argument("--load-level", help="mini (5/min), normal (10K/min), peak (50K/min), crisis (100K/min)")
    parser.add_argument("--rate", type=float, help="events per second; overrides --load-level")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--events", type=int, help="stop after this many events")
    group.add_argument("--duration", type=float, help="stop after this many seconds (default 60 without --events)")
    parser.add_argument("--fraud-rate", type=float, help="share of fraud sequences in every domain (0-1); "
                        "default per domain from config")
    parser.add_argument("--pattern-weights", help="relative weights, e.g. fraud_card_testing=2,regular_shopper=1")
    parser.add_argument("--profile", help="distribution profile: a packaged name (default, latam_wallets, "
                        "apac_super_app, eu_marketplace) or a YAML file: the same patterns with another surface "
                        "(currencies, amounts, names, timings); default: the simulator's own")
    parser.add_argument("--finish-sequences", action="store_true",
                        help="after --events / --duration, start no new sequence but let those started run to "
                        "their end (a run whose recall is measured: no fraud sequence is cut after one event)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--test-id", help="run id carried by every event (default: generated)")
    parser.add_argument("--output", help="write JSON lines here instead of producing to Kafka")
    parser.add_argument("--replay", metavar="FILE", help="send a file written with --output to Kafka, unpaced "
                        "(training history through the streaming job)")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    if args.replay:
        sent = replay_file(config, Path(args.replay))
        print(f"replayed {sent:,} events from {args.replay}")
        return 0
    options = build_options(
        config, domain=args.domain, load_level=args.load_level, rate=args.rate, events=args.events,
        duration=args.duration, fraud_rate=args.fraud_rate, seed=args.seed, test_id=args.test_id,
        pattern_weights=args.pattern_weights, output=args.output, profile=args.profile,
        finish_sequences=args.finish_sequences,
    )
    summary = run_simulation(config, options)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(f"test_id {summary.test_id}: {summary.events_sent:,} events sent ({summary.mode}), "
              f"{summary.errors} errors, {summary.achieved_rate_per_s:,.1f}/s achieved "
              f"(target {summary.target_rate_per_s:,.1f}/s), {summary.sequences:,} sequences, "
              f"fraud share {summary.fraud_share:.2%} {summary.fraud_share_by_domain}")
    if summary.mode == "kafka" and not summary.kept_rate:
        print(f"warning: could not keep the requested rate ({summary.achieved_rate_per_s:,.1f}/s "
              f"vs {summary.target_rate_per_s:,.1f}/s)")
        return 3
    return 1 if summary.errors else 0


if __name__ == "__main__":
    run(main)
