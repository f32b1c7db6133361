"""spark-submit entry point of drift (``fraud.drift``): the last hour of the lake against the current
model's training reference, recorded in PostgreSQL; run hourly on a schedule (EMR kind ``drift``).

    .venv/bin/spark-submit jobs/drift.py --config conf/local.yaml [--window-minutes 60]
"""

import sys

from fraud.cli import run
from fraud.model.__main__ import main

if __name__ == "__main__":
    run(main, ["drift", "--json", *sys.argv[1:]])
