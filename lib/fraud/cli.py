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


OWN_LOGGERS = ("fraud", "emr", "dash_app", "benchmarks", "__main__")


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
