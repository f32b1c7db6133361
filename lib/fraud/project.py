"""Where the project keeps downloads and runtime state on a developer machine.

Only the local stack and the jar cache use these; cloud runs take every location
from config.
"""

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Downloads (Maven jars) that survive `make clean-state`.
CACHE_DIR = Path(os.environ.get("FRAUD_CACHE_DIR", ROOT / ".cache"))
# Runtime state of the local stack: broker logs, database files, pids, ports.
STACK_DIR = Path(os.environ.get("FRAUD_STACK_DIR", ROOT / "var" / "stack"))

STACK_STATE = STACK_DIR / "state.json"


def local_endpoint(service: str) -> str | None:
    """The address the running local stack recorded for ``service`` ("kafka" or "postgres") in its state
    file, or None when it is not running. Read as data, so nothing but the stack imports the stack."""
    import psutil

    try:
        entry = (json.loads(STACK_STATE.read_text()).get("endpoints") or {}).get(service)
    except (FileNotFoundError, ValueError):
        return None
    if not entry:
        return None
    try:  # the pid alive and still the stack's (its command line names the stack's folder): not a recycled pid
        alive = entry["marker"] in " ".join(psutil.Process(entry["pid"]).cmdline())
    except (psutil.Error, TypeError):
        return None
    return entry["address"] if alive else None
