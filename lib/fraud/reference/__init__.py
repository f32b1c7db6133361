"""Reference data the detector consults, as a fraud team would from threat-intel feeds and standards.

The simulator draws from the same lists, the way real traffic and a real feed overlap. The
currency table is data (``currencies.csv``, or the file ``quality.currencies_file`` names): every
active ISO 4217 currency with its minor units and an approximate rate, for magnitudes (the amount
bounds of the quality checks scale by it: a JPY amount is ~150x its USD one), not for accounting.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fraud.cli import UserError

# IP prefixes of VPN, proxy and hosting providers (a stand-in for an IP-reputation feed).
VPN_IP_PREFIXES = ("185.220.101.", "104.28.14.", "45.86.200.", "193.32.126.", "89.187.175.")

# Offshore financial centres that AML rules treat as high-risk destinations.
HIGH_RISK_COUNTRIES = ("KY", "PA", "BZ", "VG")

# US currency transaction reporting threshold; structuring stays just below it.
CTR_THRESHOLD_USD = 10_000.0

_CURRENCY_COLUMNS = ["code", "minor_units", "per_usd", "name"]


@dataclass(frozen=True)
class Currency:
    code: str
    minor_units: int  # digits after the decimal point (JPY 0, USD 2, KWD 3)
    per_usd: float  # units of this currency one US dollar buys, approximately
    name: str


@lru_cache(maxsize=4)
def currencies(path: str | None = None) -> dict[str, Currency]:
    """The currency table by code: ``path`` (a CSV with ``code,minor_units,per_usd,name``), or the
    ISO 4217 table packaged with ``fraud``. A malformed file raises ``UserError`` naming its line."""
    source = Path(path) if path else resources.files("fraud.reference") / "currencies.csv"
    try:
        lines = source.read_text().splitlines()
    except OSError as err:
        raise UserError(f"currency table {source}: {err.strerror or err}") from None
    reader = csv.DictReader(lines)
    if reader.fieldnames != _CURRENCY_COLUMNS:
        raise UserError(f"currency table {source}: header must be {','.join(_CURRENCY_COLUMNS)}")
    table = {}
    for line_no, row in enumerate(reader, start=2):
        try:
            currency = Currency(row["code"], int(row["minor_units"]), float(row["per_usd"]), row["name"])
        except (TypeError, ValueError):
            raise UserError(f"currency table {source}, line {line_no}: minor_units must be an integer and"
                            " per_usd a number") from None
        if len(currency.code) != 3 or not currency.code.isupper() or not 0 <= currency.minor_units <= 4 \
                or not 0 < currency.per_usd < math.inf:
            raise UserError(f"currency table {source}, line {line_no}: needs a 3-letter upper-case code,"
                            " 0-4 minor units and a positive, finite per_usd")
        if table.setdefault(currency.code, currency) is not currency:
            raise UserError(f"currency table {source}, line {line_no}: {currency.code} listed twice")
    return table


@lru_cache(maxsize=8)
def _reference_codes(name: str) -> tuple[str, ...]:
    if not name.replace("_", "").isalnum():
        raise UserError(f"no reference list {name!r}")
    try:
        lines = (resources.files("fraud.reference") / f"{name}.csv").read_text().splitlines()
    except (OSError, FileNotFoundError):
        raise UserError(f"no reference list {name!r} in fraud.reference") from None
    reader = csv.DictReader(lines)
    if not reader.fieldnames or reader.fieldnames[0] != "code":
        raise UserError(f"reference list {name}: its first column must be code")
    return tuple(row["code"] for row in reader)


def reference_codes(name: str) -> list[str]:
    """The ``code`` column of a reference list packaged here (``<name>.csv``, e.g. the FATF and EU
    high-risk jurisdictions that the typology rules read as ``@high_risk_jurisdictions``)."""
    return list(_reference_codes(name))
