"""The transaction simulator: 16 behaviour patterns over three domains, paced to Kafka or to a file.

Entry points: ``python -m fraud_simulator`` (CLI) and ``handler(event, context)``
(Lambda-style, returns the run summary).
"""

from fraud_simulator.run import RunOptions, RunSummary, run_simulation

__all__ = ["RunOptions", "RunSummary", "handler", "run_simulation"]


def handler(event: dict, context=None) -> dict:
    """Lambda-style entry: ``{"domain", "load_level", "test_id", "fraud_rate", "duration"}`` -> summary.

    Returns ``{"statusCode": 200, **summary}``, or ``{"statusCode": 400, "error": ...}``
    for bad input. The config comes from ``FRAUD_CONFIG`` (default conf/local.yaml).
    """
    import os

    from fraud.cli import UserError
    from fraud.config import load_config
    from fraud_simulator.__main__ import build_options

    try:
        config = load_config(os.environ.get("FRAUD_CONFIG", "conf/local.yaml"))
        options = build_options(
            config,
            domain=str(event.get("domain", "all")),
            load_level=event.get("load_level"),
            rate=None,
            events=None,
            duration=float(event.get("duration", 60)),
            fraud_rate=event.get("fraud_rate"),
            seed=int(event.get("seed", 0)),
            test_id=event.get("test_id"),
            pattern_weights=None,
            output=None,
        )
        return {"statusCode": 200, **run_simulation(config, options).to_dict()}
    except (UserError, ValueError, TypeError) as err:
        return {"statusCode": 400, "error": str(err)}
