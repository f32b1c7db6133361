"""AWS requests checked against the service model botocore ships, as the service would check them.

botocore's own parameter validation (and so the Stubber in the tests) checks types and required
members only; the service also refuses a string outside its pattern or enum, or longer or shorter
than its bounds, and a number outside its range. Those are checked here, before any request is
sent or written into a schedule, so a bad value fails with one line on this side instead of at
the service at 03:00. ``LIMITS`` adds the bounds the model leaves out but the service documents.
"""

from __future__ import annotations

import re
from functools import lru_cache

from fraud.cli import UserError

# (service, operation, member path) -> (min, max): bounds documented by the service but absent
# from its model (EMR Serverless: "maxFailedAttemptsPerHour ... between 1 and 10").
LIMITS = {("emr-serverless", "StartJobRun", "retryPolicy.maxFailedAttemptsPerHour"): (1, 10)}


@lru_cache(maxsize=None)
def _input_shape(service: str, operation: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape


def problems(service: str, operation: str, params: dict) -> list[str]:
    """What the service would refuse in ``params`` (empty: nothing), each as ``path: reason``."""
    found: list[str] = []

    def check(shape, value, path: str) -> None:
        limits = LIMITS.get((service, operation, path))
        low, high = limits or (shape.metadata.get("min"), shape.metadata.get("max"))
        kind = shape.type_name
        if kind == "structure":
            if not isinstance(value, dict):
                found.append(f"{path or 'request'}: not a structure")
                return
            for name in shape.required_members:
                if name not in value:
                    found.append(f"{_join(path, name)}: required")
            for name, member in value.items():
                if name not in shape.members:
                    found.append(f"{_join(path, name)}: unknown member")
                else:
                    check(shape.members[name], member, _join(path, name))
        elif kind in ("list", "map", "string"):
            if kind == "string" and not isinstance(value, str):
                found.append(f"{path}: not a string")
                return
            size = len(value)
            if (low is not None and size < low) or (high is not None and size > high):
                found.append(f"{path}: length {size} outside {low}-{high}")
            if kind == "list":
                for i, item in enumerate(value):
                    check(shape.member, item, f"{path}[{i}]")
            elif kind == "map":
                for key, item in value.items():
                    check(shape.key, key, f"{path} key")
                    check(shape.value, item, f"{path}[{key}]")
            else:
                enum = getattr(shape, "enum", None)
                if enum and value not in enum:
                    found.append(f"{path}: {value[:40]!r} is not one of {', '.join(enum)}")
                pattern = shape.metadata.get("pattern")
                if pattern and not re.fullmatch(pattern, value):
                    found.append(f"{path}: {value[:40]!r} does not match {pattern[:60]}")
        elif kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                found.append(f"{path}: not an integer")
            elif (low is not None and value < low) or (high is not None and value > high):
                found.append(f"{path}: {value} outside {low}-{high}")

    check(_input_shape(service, operation), params, "")
    return found


def validate(service: str, operation: str, params: dict) -> dict:
    """``params``, or a one-line UserError naming everything the service would refuse."""
    found = problems(service, operation, params)
    if found:
        raise UserError(f"invalid {operation} request: " + "; ".join(found))
    return params


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
