"""The 16 behaviour patterns (9 fraud, 7 regular) of docs/design.md §5, one function each.

A pattern function draws one actor's whole sequence: a list of ``Step``s, each the
domain fields of one event plus the gap in seconds since the previous event. The
generator adds the common fields (ids, timestamps, ground truth).

Regular traffic deliberately contains hard negatives that share part of a fraud
signature (big spenders, VPN users, large legitimate wires, single expensive
electronics orders, gift orders shipped elsewhere), so a model cannot win on one
field alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from fraud.model_classes import FRAUD_CLASSES
from fraud.reference import CTR_THRESHOLD_USD, HIGH_RISK_COUNTRIES, VPN_IP_PREFIXES

# --- shared vocabularies ------------------------------------------------------

_RESIDENTIAL_PREFIXES = (24, 67, 71, 73, 76, 98, 99, 174, 82, 86, 90)
_US_STATES = ("CA", "NY", "TX", "FL", "WA", "IL", "MA", "CO", "GA", "OR")
_CITIES = {"CA": "Los Angeles", "NY": "New York", "TX": "Austin", "FL": "Miami", "WA": "Seattle",
           "IL": "Chicago", "MA": "Boston", "CO": "Denver", "GA": "Atlanta", "OR": "Portland"}
_STREETS = ("Oak St", "Maple Ave", "Pine Rd", "Cedar Ln", "Elm St", "Main St", "Lake Dr", "Hill Rd")
_GAMES = ("g-starfall", "g-ironclad", "g-pixel-kart", "g-mythic-arena", "g-farmstead")
_GAME_ITEMS = {
    "skin": ("Neon Warden Skin", "Dragon Scale Skin", "Arctic Camo Skin"),
    "weapon": ("Plasma Rifle", "Obsidian Blade", "Storm Bow"),
    "battle_pass": ("Season Battle Pass", "Premium Battle Pass"),
    "lootbox": ("Mythic Crate", "Legendary Chest"),
    "currency": ("500 Gold", "1200 Gems", "Coin Pack"),
    "booster": ("XP Booster", "Energy Refill"),
    "cosmetic": ("Emote Pack", "Banner Frame"),
}
_PRODUCTS = {
    "books": (4.0, 35.0), "electronics": (25.0, 1500.0), "clothing": (12.0, 150.0),
    "home": (8.0, 300.0), "toys": (6.0, 90.0), "beauty": (5.0, 80.0), "grocery": (2.0, 40.0),
}


@dataclass
class Step:
    """One event of a sequence: its domain fields and the seconds since the previous event.

    ``max_amount_usd`` bounds the amount where the bound is the pattern's meaning (structuring stays
    under the reporting threshold): a profile's scale and noise never push the amount past it."""

    fields: dict
    gap_s: float = 0.0
    max_amount_usd: float | None = None
    actor_id: str | None = None  # another actor than the sequence's (a ring of accounts: fraud_simulator.variants)


@dataclass
class Actor:
    """Per-sequence identity the pattern functions draw from (all deterministic from the rng)."""

    actor_id: str
    rng: random.Random
    _counter: list = field(default_factory=lambda: [0])

    def alias(self, k: int) -> str:
        """The id of the sequence's k-th other account (a ring of accounts behind one person)."""
        return f"{self.actor_id}-{k}"

    def token(self, prefix: str) -> str:
        """A fresh identifier unique within the run (device, account, product...)."""
        self._counter[0] += 1
        return f"{prefix}-{self.actor_id.split('-', 1)[1]}-{self._counter[0]}"


# --- small helpers ------------------------------------------------------------

def _money(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def _residential_ip(rng: random.Random) -> str:
    return f"{rng.choice(_RESIDENTIAL_PREFIXES)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _vpn_ip(rng: random.Random) -> str:
    """An address in a VPN / proxy / hosting range (account takeovers, and some legitimate players)."""
    return f"{rng.choice(VPN_IP_PREFIXES)}{rng.randint(1, 254)}"


def _address(rng: random.Random, country: str = "US") -> dict:
    state = rng.choice(_US_STATES)
    return {
        "street": f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",
        "city": _CITIES[state],
        "state": state,
        "zip": f"{rng.randint(10000, 99999)}",
        "country": country,
    }


def _gaps(rng: random.Random, n: int, low: float, high: float) -> list[float]:
    return [0.0] + [round(rng.uniform(low, high), 3) for _ in range(n - 1)]


# --- gaming -------------------------------------------------------------------

def _gaming_steps(actor: Actor, n: int, gap: tuple[float, float], draw: Callable[[int], dict],
                  base: dict) -> list[Step]:
    return [Step({**base, **draw(i)}, g) for i, g in enumerate(_gaps(actor.rng, n, *gap))]


def _gaming_base(actor: Actor, ip: str, device: str, payment: str) -> dict:
    return {
        "player_id": actor.token("player"),
        "game_id": actor.rng.choice(_GAMES),
        "currency": "USD",
        "payment_method": payment,
        "ip_address": ip,
        "device_id": device,
    }


def _item(rng: random.Random, types: tuple[str, ...]) -> dict:
    item_type = rng.choice(types)
    return {"item_type": item_type, "item_name": rng.choice(_GAME_ITEMS[item_type])}


def fraud_account_takeover(actor: Actor) -> list[Step]:
    rng = actor.rng
    base = _gaming_base(actor, _vpn_ip(rng), actor.token("dev-new"), rng.choice(("credit_card", "paypal")))
    return _gaming_steps(actor, rng.randint(3, 5), (2, 12), lambda i: {
        **_item(rng, ("skin", "weapon", "battle_pass")),
        "amount": _money(rng, 50, 200),
        "session_length_sec": rng.randint(30, 240),
    }, base)


def fraud_gold_farming(actor: Actor) -> list[Step]:
    rng = actor.rng
    base = _gaming_base(actor, _residential_ip(rng), actor.token("dev"), "credit_card")
    return _gaming_steps(actor, rng.randint(5, 10), (1, 6), lambda i: {
        **_item(rng, ("currency",)),
        "amount": _money(rng, 0.99, 4.99),
        "session_length_sec": rng.randint(5, 60),
    }, base)


def fraud_chargeback_fraud(actor: Actor) -> list[Step]:
    rng = actor.rng
    base = _gaming_base(actor, _residential_ip(rng), actor.token("dev"), "credit_card")
    return _gaming_steps(actor, rng.randint(2, 4), (3, 20), lambda i: {
        **_item(rng, ("lootbox", "battle_pass", "currency")),
        "amount": _money(rng, 100, 500),
        "session_length_sec": rng.randint(120, 1800),
    }, base)


def regular_casual_player(actor: Actor) -> list[Step]:
    rng = actor.rng
    base = _gaming_base(actor, _residential_ip(rng), actor.token("dev"),
                        rng.choice(("credit_card", "paypal", "gift_card", "apple_pay")))
    return _gaming_steps(actor, rng.randint(2, 5), (5, 40), lambda i: {
        **_item(rng, ("skin", "cosmetic", "booster", "currency", "battle_pass")),
        "amount": _money(rng, 0.99, 19.99),
        "session_length_sec": rng.randint(600, 5400),
    }, base)


def regular_whale_spender(actor: Actor) -> list[Step]:
    """Hard negative: big legitimate spend on the items takeovers buy, a third of them over a VPN."""
    rng = actor.rng
    ip = _vpn_ip(rng) if rng.random() < 0.33 else _residential_ip(rng)
    base = _gaming_base(actor, ip, actor.token("dev"), rng.choice(("credit_card", "paypal", "apple_pay")))
    return _gaming_steps(actor, rng.randint(3, 8), (5, 40), lambda i: {
        **_item(rng, ("skin", "weapon", "battle_pass", "lootbox")),
        "amount": _money(rng, 20, 100),
        "session_length_sec": rng.randint(1200, 7200),
    }, base)


def regular_grinder(actor: Actor) -> list[Step]:
    """Hard negative: many small currency buys on a credit card, but over long sessions."""
    rng = actor.rng
    base = _gaming_base(actor, _residential_ip(rng), actor.token("dev"),
                        rng.choice(("credit_card", "credit_card", "paypal")))
    return _gaming_steps(actor, rng.randint(4, 10), (5, 40), lambda i: {
        **_item(rng, ("currency", "booster", "currency")),
        "amount": _money(rng, 0.99, 9.99),
        "session_length_sec": rng.randint(1800, 10800),
    }, base)


# --- e-commerce ---------------------------------------------------------------

def _cart(actor: Actor, lines: list[tuple[str, float, int]]) -> dict:
    items = [
        {"product_id": actor.token(f"sku-{category}"), "category": category, "price": price, "quantity": qty}
        for category, price, qty in lines
    ]
    return {"cart_items": items, "amount": round(sum(i["price"] * i["quantity"] for i in items), 2)}


def _order(actor: Actor, user_id: str, cart: dict, shipping: dict, billing: dict, payment: str, ip: str,
           device: str, session_s: int) -> dict:
    return {
        "user_id": user_id, **cart, "currency": "USD", "payment_method": payment,
        "shipping_address": shipping, "billing_address": billing, "ip_address": ip,
        "device_fingerprint": device, "session_duration_sec": session_s,
    }


def _random_lines(rng: random.Random, count: int, categories: tuple[str, ...] = tuple(_PRODUCTS)) -> list:
    lines = []
    for _ in range(count):
        category = rng.choice(categories)
        low, high = _PRODUCTS[category]
        lines.append((category, _money(rng, low, min(high, low * 8)), rng.choice((1, 1, 1, 2, 3))))
    return lines


def fraud_card_testing(actor: Actor) -> list[Step]:
    rng = actor.rng
    user, ip, device = actor.token("user"), _residential_ip(rng), actor.token("fp")
    billing = _address(rng)
    return [
        Step(_order(actor, user, _cart(actor, [("books", _money(rng, 1, 15), 1)]), _address(rng), billing,
                    "credit_card", ip, device, rng.randint(10, 90)), gap)
        for gap in _gaps(rng, rng.randint(5, 10), 1, 6)
    ]


def fraud_friendly_fraud(actor: Actor) -> list[Step]:
    rng = actor.rng
    user, ip, device = actor.token("user"), _residential_ip(rng), actor.token("fp")
    home = _address(rng)
    return [
        Step(_order(actor, user, _cart(actor, [("electronics", _money(rng, 50, 1000), 1)]), home, home,
                    "credit_card", ip, device, rng.randint(1800, 5400)), gap)
        for gap in _gaps(rng, rng.randint(2, 3), 5, 30)
    ]


def fraud_promo_abuse(actor: Actor) -> list[Step]:
    """One abuser behind many new accounts: same shipping address and IP, a new device each time."""
    rng = actor.rng
    ip, drop = _residential_ip(rng), _address(rng)
    steps = []
    for gap in _gaps(rng, rng.randint(4, 8), 2, 15):
        lines = _random_lines(rng, rng.randint(1, 2), ("beauty", "clothing", "grocery", "toys"))
        steps.append(Step(_order(actor, actor.token("user"), _cart(actor, lines), drop, _address(rng),
                                 rng.choice(("credit_card", "paypal")), ip, actor.token("fp"),
                                 rng.randint(60, 400)), gap))
    return steps


def regular_shopper(actor: Actor) -> list[Step]:
    """Hard negatives inside: single expensive electronics orders, gifts shipped to another address."""
    rng = actor.rng
    user, ip, device = actor.token("user"), _residential_ip(rng), actor.token("fp")
    home = _address(rng)
    payment = rng.choice(("credit_card", "paypal", "debit_card", "apple_pay"))
    steps = []
    for gap in _gaps(rng, rng.randint(2, 4), 5, 45):
        if rng.random() < 0.2:
            # A single expensive gadget, bought by someone who knew what they wanted.
            lines, session_s = [("electronics", _money(rng, 150, 1500), 1)], rng.randint(300, 1500)
        else:
            lines, session_s = _random_lines(rng, rng.randint(1, 4)), rng.randint(300, 3600)
        shipping = _address(rng) if rng.random() < 0.15 else home
        steps.append(Step(_order(actor, user, _cart(actor, lines), shipping, home, payment, ip, device,
                                 session_s), gap))
    return steps


def regular_window_shopper(actor: Actor) -> list[Step]:
    """Long browsing, few cheap items; sometimes a single cheap book."""
    rng = actor.rng
    user, ip, device = actor.token("user"), _residential_ip(rng), actor.token("fp")
    home = _address(rng)
    payment = rng.choice(("credit_card", "paypal", "debit_card"))
    steps = []
    for gap in _gaps(rng, rng.randint(2, 3), 10, 60):
        lines = [("books", _money(rng, 4, 25), 1)] if rng.random() < 0.3 else _random_lines(rng, rng.randint(1, 2))
        steps.append(Step(_order(actor, user, _cart(actor, lines), home, home, payment, ip, device,
                                 rng.randint(900, 5400)), gap))
    return steps


# --- fintech ------------------------------------------------------------------

def _transfer(account_from: str, account_to: str, amount: float, transfer_type: str, country_from: str,
              country_to: str, purpose: str, ip: str, currency: str = "USD") -> dict:
    return {
        "account_from": account_from, "account_to": account_to, "amount": amount, "currency": currency,
        "transfer_type": transfer_type, "country_from": country_from, "country_to": country_to,
        "purpose": purpose, "ip_address": ip,
    }


def fraud_structuring(actor: Actor) -> list[Step]:
    rng = actor.rng
    source, ip = actor.token("acct"), _residential_ip(rng)
    return [
        Step(_transfer(source, actor.token("acct"), _money(rng, 9500, 9999), "wire", "US", "US",
                       rng.choice(("services", "family_support", "loan_repayment", "other")), ip), gap,
             max_amount_usd=CTR_THRESHOLD_USD - 0.01)
        for gap in _gaps(rng, rng.randint(5, 10), 2, 15)
    ]


def fraud_money_laundering(actor: Actor) -> list[Step]:
    """Layering: each hop's destination is the next hop's source, ending offshore."""
    rng = actor.rng
    ip = _vpn_ip(rng) if rng.random() < 0.5 else _residential_ip(rng)
    hop_from = actor.token("acct")
    steps = []
    for gap in _gaps(rng, rng.randint(4, 8), 2, 15):
        hop_to = actor.token("acct")
        steps.append(Step(_transfer(hop_from, hop_to, _money(rng, 50_000, 500_000), "swift",
                                    rng.choice(("US", "GB", "AE", "CY")), rng.choice(HIGH_RISK_COUNTRIES),
                                    rng.choice(("investment", "consulting", "trade_settlement")), ip), gap))
        hop_from = hop_to
    return steps


def fraud_synthetic_identity(actor: Actor) -> list[Step]:
    rng = actor.rng
    source, ip = actor.token("acct"), _residential_ip(rng)
    return [
        Step(_transfer(source, actor.token("acct"), _money(rng, 5_000, 50_000), rng.choice(("wire", "ach")),
                       "US", "US", rng.choice(("loan_disbursement", "personal", "business_expense")), ip), gap)
        for gap in _gaps(rng, rng.randint(3, 5), 3, 25)
    ]


def regular_saver(actor: Actor) -> list[Step]:
    """Same payee every time; now and then a legitimate large wire (house deposit, investment)."""
    rng = actor.rng
    source, savings, ip = actor.token("acct"), actor.token("acct"), _residential_ip(rng)
    steps = []
    for gap in _gaps(rng, rng.randint(2, 6), 5, 45):
        if rng.random() < 0.15:
            fields = _transfer(source, savings, _money(rng, 10_000, 60_000), "wire", "US", "US",
                               rng.choice(("home_purchase", "investment")), ip)
        else:
            fields = _transfer(source, savings, _money(rng, 100, 2_000), "ach", "US", "US", "savings", ip)
        steps.append(Step(fields, gap))
    return steps


def regular_bill_payer(actor: Actor) -> list[Step]:
    """Varied payees; sometimes a legitimate international swift (tuition, supplier) to an onshore country."""
    rng = actor.rng
    source, ip = actor.token("acct"), _residential_ip(rng)
    steps = []
    for gap in _gaps(rng, rng.randint(2, 6), 5, 45):
        if rng.random() < 0.12:
            fields = _transfer(source, actor.token("acct"), _money(rng, 20_000, 250_000), "swift", "US",
                               rng.choice(("GB", "DE", "FR", "JP", "CA")),
                               rng.choice(("tuition", "supplier_payment", "property")), ip)
        else:
            fields = _transfer(source, actor.token("acct"), _money(rng, 40, 600), "ach", "US", "US",
                               rng.choice(("utilities", "rent", "insurance", "phone", "credit_card_bill")), ip)
        steps.append(Step(fields, gap))
    return steps


# --- the catalogue ------------------------------------------------------------

@dataclass(frozen=True)
class Pattern:
    name: str
    domain: str
    is_fraud: bool
    draw: Callable[[Actor], list[Step]]
    weight: float = 1.0  # relative weight among the domain's fraud (or regular) patterns
    variant: str = ""  # a held-out variant of the pattern (fraud_simulator.variants); "" for the pattern itself

    @property
    def key(self) -> str:
        return f"{self.name}/{self.variant}" if self.variant else self.name


PATTERNS: dict[str, Pattern] = {
    p.name: p
    for p in (
        Pattern("fraud_account_takeover", "gaming", True, fraud_account_takeover),
        Pattern("fraud_gold_farming", "gaming", True, fraud_gold_farming),
        Pattern("fraud_chargeback_fraud", "gaming", True, fraud_chargeback_fraud),
        Pattern("regular_casual_player", "gaming", False, regular_casual_player, 0.6),
        Pattern("regular_whale_spender", "gaming", False, regular_whale_spender, 0.15),
        Pattern("regular_grinder", "gaming", False, regular_grinder, 0.25),
        Pattern("fraud_card_testing", "ecommerce", True, fraud_card_testing),
        Pattern("fraud_friendly_fraud", "ecommerce", True, fraud_friendly_fraud),
        Pattern("fraud_promo_abuse", "ecommerce", True, fraud_promo_abuse),
        Pattern("regular_shopper", "ecommerce", False, regular_shopper, 0.7),
        Pattern("regular_window_shopper", "ecommerce", False, regular_window_shopper, 0.3),
        Pattern("fraud_structuring", "fintech", True, fraud_structuring),
        Pattern("fraud_money_laundering", "fintech", True, fraud_money_laundering),
        Pattern("fraud_synthetic_identity", "fintech", True, fraud_synthetic_identity),
        Pattern("regular_saver", "fintech", False, regular_saver, 0.5),
        Pattern("regular_bill_payer", "fintech", False, regular_bill_payer, 0.5),
    )
}

# The classes are the contract's (fraud.model_classes), not derived from this catalogue: it must draw exactly
# those fraud patterns, and the model labels an event by its pattern's name (fraud_* or regular_*).
assert {name for name, p in PATTERNS.items() if p.is_fraud} == set(FRAUD_CLASSES), (
    "fraud patterns differ from fraud.model_classes.FRAUD_CLASSES")
assert all(name.startswith("fraud_" if p.is_fraud else "regular_") for name, p in PATTERNS.items()), (
    "a pattern's name must start with fraud_ or regular_ as it is fraud or not")
