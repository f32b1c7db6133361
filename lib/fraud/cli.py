"""Shared command-line plumbing: user mistakes end in one line and a non-zero exit."""

import argparse
import logging
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix (bad argument, bad config, service not running).

    Reported as one line without a stack trace; anything else is a bug and keeps
    its traceback.
    """


OWN_LOGGERS = ("fraud", "fraud_simulator", "fraud_devstack", "emr", "dash_app", "benchmarks", "__main__")


def run(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a CLI ``main(argv)`` and exit with its status, turning UserError into one line."""
    # Libraries (Great Expectations, py4j, urllib3) at WARNING: their INFO lines drown the job's own.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        status = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(status or 0)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (``error: ...``) and exits 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def report(value, as_json: bool = False) -> None:
    """Print a command's result: readable text for people, or JSON (``--json``) for programs."""
    import json

    print(json.dumps(value, indent=2, default=str) if as_json else readable(value))


def readable(value, indent: int = 0) -> str:
    """A result as aligned text: a mapping as ``key: value`` lines (nested ones indented under their
    key), a list of same-keyed mappings as a table, any other list as ``- item`` lines."""
    pad = "  " * indent
    if isinstance(value, dict):
        width = max((len(str(k)) for k in value), default=0)
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{key}:", readable(item, indent + 1)]
            else:
                lines.append(f"{pad}{str(key) + ':':{width + 1}} {_scalar(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value) and len({tuple(v) for v in value}) == 1 \
                and not any(isinstance(x, (dict, list)) for v in value for x in v.values()):
            columns = list(value[0])
            cells = [[_scalar(v[c]) for c in columns] for v in value]
            widths = [max(len(str(c)), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
            rows = [columns, *cells]
            return "\n".join(pad + "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows)
        return "\n".join(f"{pad}- {_scalar(v)}" if not isinstance(v, (dict, list))
                         else f"{pad}-\n{readable(v, indent + 1)}" for v in value)
    return pad + _scalar(value)


def _scalar(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, (dict, list)):
        return "none"
    return str(value)
