"""Where the project keeps downloads and runtime state on a developer machine.

Only the local stack and the jar cache use these; cloud runs take every location
from config.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Downloads (Maven jars) that survive `make clean-state`.
CACHE_DIR = Path(os.environ.get("FRAUD_CACHE_DIR", ROOT / ".cache"))
# Runtime state of the local stack: broker logs, database files, pids, ports.
STACK_DIR = Path(os.environ.get("FRAUD_STACK_DIR", ROOT / "var" / "stack"))
