"""Distribution profiles: the same 16 patterns with a shifted surface, to stand in for traffic
nobody here generated.

A pattern decides the behaviour (who buys what how fast, where money goes); a profile changes
only how that behaviour looks: the currency mix and amount scale, the names of payment methods,
item types, categories, transfer types and purposes, session lengths, gaps between events,
sequence lengths, and noise on every number. A profile is a YAML file, so a user can describe
their own traffic: ``python -m fraud_simulator --profile NAME|FILE``, NAME one of the profiles
packaged in ``dev/fraud_simulator/profiles/`` (``default.yaml`` documents every key).

Amounts: patterns draw them in US dollars; a profile scales them, adds noise, converts them to
the event's currency at the currency table's rate (``fraud.reference``) and rounds them to its
minor units, never past a bound that is the pattern's meaning (``Step.max_amount_usd``: structuring
stays under the reporting threshold). Cart prices go the same way and the order amount is their sum.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from fraud.config import DOMAINS, ConfigError, load_dataclass
from fraud.reference import currencies
from fraud_simulator.patterns import Step

# Fields whose values a profile may rename (the vocabulary of one platform).
RENAMEABLE = ("payment_method", "item_type", "category", "transfer_type", "purpose")


@dataclass(frozen=True)
class Profile:
    name: str
    # Per domain, currency -> weight: each sequence draws one currency and keeps it.
    currencies: dict[str, dict[str, float]]
    # Per domain, a factor on every amount (before conversion).
    amount_scale: dict[str, float]
    # Every amount, price, session length and gap is multiplied by U(1 - noise, 1 + noise).
    noise: float
    session_scale: float
    gap_scale: float
    # Sequences are cut or extended (the pattern drawn again for the same actor) to about this
    # factor of their length, never below two events.
    sequence_length_scale: float
    # Field -> {simulator value: this platform's value}; values not listed stay as they are.
    rename: dict[str, dict[str, str]]

    @property
    def is_identity(self) -> bool:
        return self == DEFAULT_PROFILE


DEFAULT_PROFILE = Profile(
    name="default", currencies={d: {"USD": 1.0} for d in DOMAINS}, amount_scale={d: 1.0 for d in DOMAINS},
    noise=0.0, session_scale=1.0, gap_scale=1.0, sequence_length_scale=1.0, rename={})


def packaged_profiles() -> list[str]:
    return sorted(f.name.removesuffix(".yaml") for f in resources.files("fraud_simulator.profiles").iterdir()
                  if f.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path | None) -> Profile:
    """A packaged profile by name, or a profile file (None: the simulator's own surface), checked:
    one-line errors."""
    if name_or_path is None:
        return DEFAULT_PROFILE
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in packaged_profiles():
        path = Path(str(resources.files("fraud_simulator.profiles") / f"{name_or_path}.yaml"))
    elif not path.exists():
        raise ConfigError(f"no profile {name_or_path!r}: neither a file nor one of {', '.join(packaged_profiles())}")
    profile = load_dataclass(Profile, path)
    table = currencies(None)
    for key, mapping in (("currencies", profile.currencies), ("amount_scale", profile.amount_scale)):
        if sorted(mapping) != sorted(DOMAINS):
            raise ConfigError(f"{path}: {key}: needs exactly the domains {', '.join(DOMAINS)}")
    for domain, mix in profile.currencies.items():
        unknown = sorted(set(mix) - set(table))
        if unknown or not mix or min(mix.values()) < 0 or not sum(mix.values()) > 0:
            raise ConfigError(f"{path}: currencies.{domain}: needs ISO 4217 codes with non-negative weights"
                              + (f" ({unknown[0]} is not one)" if unknown else ""))
    if not 0 <= profile.noise < 1:
        raise ConfigError(f"{path}: noise: must be in [0, 1), got {profile.noise}")
    for key in ("session_scale", "gap_scale", "sequence_length_scale"):
        if not getattr(profile, key) > 0:
            raise ConfigError(f"{path}: {key}: must be positive")
    for field in profile.rename:
        if field not in RENAMEABLE:
            raise ConfigError(f"{path}: rename.{field}: only {', '.join(RENAMEABLE)} can be renamed")
    return profile


class Surface:
    """Applies a profile to the steps of one sequence, with its own random stream (the default
    profile draws nothing, so a seed gives the same events as before profiles existed)."""

    def __init__(self, profile: Profile, seed: int):
        self.profile = profile
        self.rng = random.Random(f"{seed}/profile/{profile.name}")
        self.table = currencies(None)

    def apply(self, domain: str, steps: list[Step], draw_more) -> list[Step]:
        p = self.profile
        if p.is_identity:
            return steps
        rng = self.rng
        target = max(2, round(len(steps) * p.sequence_length_scale * self._jitter()))
        while len(steps) < target:
            steps = steps + draw_more()
        steps = steps[:target]
        codes, weights = zip(*p.currencies[domain].items())
        currency = self.table[rng.choices(codes, weights)[0]]
        factor = p.amount_scale[domain] * currency.per_usd
        out = []
        for i, step in enumerate(steps):
            fields = {k: self._renamed(k, v) for k, v in step.fields.items()}
            fields["currency"] = currency.code
            if "cart_items" in fields:
                items = [{**item, "category": self._renamed("category", item["category"]),
                          "price": round(item["price"] * factor * self._jitter(), currency.minor_units)}
                         for item in fields["cart_items"]]
                fields["cart_items"] = items
                fields["amount"] = round(sum(i["price"] * i["quantity"] for i in items), currency.minor_units)
            else:
                amount_usd = fields["amount"] * p.amount_scale[domain] * self._jitter()
                if step.max_amount_usd is not None:
                    amount_usd = min(amount_usd, step.max_amount_usd)
                fields["amount"] = round(amount_usd * currency.per_usd, currency.minor_units)
            fields["amount"] = max(fields["amount"], 10.0 ** -currency.minor_units)
            for key in ("session_length_sec", "session_duration_sec"):
                if key in fields:
                    fields[key] = max(1, round(fields[key] * p.session_scale * self._jitter()))
            gap = 0.0 if i == 0 else round(step.gap_s * p.gap_scale * self._jitter(), 3)
            out.append(replace(step, fields=fields, gap_s=gap))
        return out

    def _jitter(self) -> float:
        noise = self.profile.noise
        return self.rng.uniform(1 - noise, 1 + noise) if noise else 1.0

    def _renamed(self, field: str, value):
        names = self.profile.rename.get(field)
        return names.get(value, value) if names and isinstance(value, str) else value
