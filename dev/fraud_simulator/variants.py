"""Held-out pattern variants: the nine fraud patterns of docs/design.md §5 drawn otherwise, an
evaluation the simulator's own surface cannot game.

Training never sees them: they are not in ``PATTERNS`` (the history and the live simulator draw only
from it). Each keeps its pattern's definition and changes what a model could have learned by heart:
shorter and longer sequences (structuring of two transfers), other destinations and channels, other
amounts within the definition, and actor and user ids arranged otherwise (a ring of accounts behind
one address instead of one account behind many user ids). Regular traffic is the simulator's own.

``variant_events(config, seed, events)`` draws them with the simulator's generator; every sequence's
ground truth (its transactions, pattern and variant) comes with them, since a ring's events carry
several actor ids. ``benchmarks/variants.py`` scores them with the model and the typology rules.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fraud.config import DOMAINS, Config
from fraud_simulator.generator import EventGenerator, SequenceRecord
from fraud_simulator.patterns import (
    PATTERNS, Actor, Pattern, Step, _address, _cart, _gaming_base, _gaming_steps, _gaps, _item, _money, _order,
    _residential_ip, _transfer, _vpn_ip,
)

# FATF-listed destinations (fraud/reference/high_risk_jurisdictions.csv), not the offshore centres
# the simulator's laundering uses.
_LISTED = ("NG", "VN", "ZA", "LB")
_ABROAD = ("MX", "CA", "GB", "DE")


# --- gaming -------------------------------------------------------------------

def takeover_residential(actor: Actor) -> list[Step]:
    """A takeover from a residential address on a new device: no VPN, more and smaller purchases."""
    rng = actor.rng
    base = _gaming_base(actor, _residential_ip(rng), actor.token("dev-new"), "credit_card")
    return _gaming_steps(actor, rng.randint(6, 8), (1, 8), lambda i: {
        **_item(rng, ("skin", "weapon", "lootbox")), "amount": _money(rng, 30, 120),
        "session_length_sec": rng.randint(60, 600)}, base)


def takeover_short(actor: Actor) -> list[Step]:
    rng = actor.rng
    base = _gaming_base(actor, _vpn_ip(rng), actor.token("dev-new"), "paypal")
    return _gaming_steps(actor, 2, (2, 10), lambda i: {
        **_item(rng, ("battle_pass", "weapon")), "amount": _money(rng, 150, 300),
        "session_length_sec": rng.randint(30, 200)}, base)


def gold_farming_long(actor: Actor) -> list[Step]:
    rng = actor.rng
    base = _gaming_base(actor, _residential_ip(rng), actor.token("dev"), "gift_card")
    return _gaming_steps(actor, rng.randint(12, 20), (1, 4), lambda i: {
        **_item(rng, ("currency",)), "amount": _money(rng, 1, 3), "session_length_sec": rng.randint(5, 90)}, base)


def chargeback_large(actor: Actor) -> list[Step]:
    rng = actor.rng
    base = _gaming_base(actor, _residential_ip(rng), actor.token("dev"), "credit_card")
    return _gaming_steps(actor, 2, (5, 30), lambda i: {
        **_item(rng, ("lootbox", "currency")), "amount": _money(rng, 400, 900),
        "session_length_sec": rng.randint(300, 2400)}, base)


# --- e-commerce ---------------------------------------------------------------

def _card_testing(actor: Actor, category: str, price: tuple[float, float], payment: str, count: tuple[int, int],
                  gap: tuple[float, float]) -> list[Step]:
    rng = actor.rng
    user, ip, device, billing = actor.token("user"), _residential_ip(rng), actor.token("fp"), _address(rng)
    return [Step(_order(actor, user, _cart(actor, [(category, _money(rng, *price), 1)]), _address(rng), billing,
                        payment, ip, device, rng.randint(5, 120)), g)
            for g in _gaps(rng, rng.randint(*count), *gap)]


def card_testing_short(actor: Actor) -> list[Step]:
    return _card_testing(actor, "toys", (0.5, 3), "debit_card", (3, 4), (2, 20))


def card_testing_spread(actor: Actor) -> list[Step]:
    """Slower: a minute or more between tries."""
    return _card_testing(actor, "grocery", (1, 9), "credit_card", (6, 8), (30, 90))


def friendly_fraud_long(actor: Actor) -> list[Step]:
    rng = actor.rng
    user, ip, device, home = actor.token("user"), _residential_ip(rng), actor.token("fp"), _address(rng)
    return [Step(_order(actor, user, _cart(actor, [("electronics", _money(rng, 200, 1200), 1)]), home, home,
                        "paypal", ip, device, rng.randint(600, 1800)), gap)
            for gap in _gaps(rng, rng.randint(4, 5), 10, 60)]


def promo_abuse_ring(actor: Actor) -> list[Step]:
    """A ring: every order from another new account, one user each, one drop address and IP, a new device."""
    rng = actor.rng
    ip, drop = _residential_ip(rng), _address(rng)
    steps = []
    for k, gap in enumerate(_gaps(rng, rng.randint(4, 8), 2, 15)):
        cart = _cart(actor, [("beauty", _money(rng, 10, 40), 1)])
        steps.append(Step(_order(actor, actor.token("user"), cart, drop, _address(rng), "credit_card", ip,
                                 actor.token("fp"), rng.randint(60, 400)), gap, actor_id=actor.alias(k)))
    return steps


def promo_abuse_one_device(actor: Actor) -> list[Step]:
    rng = actor.rng
    ip, drop, device = _residential_ip(rng), _address(rng), actor.token("fp")
    return [Step(_order(actor, actor.token("user"), _cart(actor, [("clothing", _money(rng, 15, 60), 1)]), drop,
                        _address(rng), "paypal", ip, device, rng.randint(60, 400)), gap)
            for gap in _gaps(rng, 3, 5, 30)]


# --- fintech ------------------------------------------------------------------

def structuring_pair(actor: Actor) -> list[Step]:
    rng = actor.rng
    source, ip = actor.token("acct"), _residential_ip(rng)
    return [Step(_transfer(source, actor.token("acct"), _money(rng, 9000, 9999), "wire", "US", "US", "other", ip),
                 gap, max_amount_usd=9999.99) for gap in _gaps(rng, 2, 2, 30)]


def structuring_abroad(actor: Actor) -> list[Step]:
    rng = actor.rng
    source, ip = actor.token("acct"), _residential_ip(rng)
    return [Step(_transfer(source, actor.token("acct"), _money(rng, 9500, 9999), rng.choice(("wire", "ach")), "US",
                           rng.choice(_ABROAD), "family_support", ip), gap, max_amount_usd=9999.99)
            for gap in _gaps(rng, rng.randint(5, 8), 2, 15)]


def structuring_long(actor: Actor) -> list[Step]:
    rng = actor.rng
    source, ip = actor.token("acct"), _residential_ip(rng)
    return [Step(_transfer(source, actor.token("acct"), _money(rng, 8500, 9900), "ach", "US", "US", "services", ip),
                 gap, max_amount_usd=9999.99) for gap in _gaps(rng, rng.randint(12, 15), 2, 10)]


def laundering_listed(actor: Actor) -> list[Step]:
    """Layering through FATF-listed jurisdictions with smaller hops, by wire."""
    rng = actor.rng
    ip, hop_from = _residential_ip(rng), actor.token("acct")
    steps = []
    for gap in _gaps(rng, rng.randint(3, 5), 2, 20):
        hop_to = actor.token("acct")
        steps.append(Step(_transfer(hop_from, hop_to, _money(rng, 20_000, 60_000), "wire", rng.choice(("US", "GB")),
                                    rng.choice(_LISTED), "consulting", ip), gap))
        hop_from = hop_to
    return steps


def laundering_short(actor: Actor) -> list[Step]:
    rng = actor.rng
    ip, hop_from = _vpn_ip(rng), actor.token("acct")
    steps = []
    for gap in _gaps(rng, 2, 2, 15):
        hop_to = actor.token("acct")
        steps.append(Step(_transfer(hop_from, hop_to, _money(rng, 100_000, 500_000), "swift", "AE", "PA",
                                    "trade_settlement", ip), gap))
        hop_from = hop_to
    return steps


def synthetic_identity_small(actor: Actor) -> list[Step]:
    rng = actor.rng
    source, ip = actor.token("acct"), _residential_ip(rng)
    return [Step(_transfer(source, actor.token("acct"), _money(rng, 2_000, 5_000), "ach", "US", "US", "personal", ip),
                 gap) for gap in _gaps(rng, rng.randint(3, 5), 3, 25)]


VARIANTS: dict[str, Pattern] = {
    p.key: p
    for p in (
        Pattern("fraud_account_takeover", "gaming", True, takeover_residential, variant="residential"),
        Pattern("fraud_account_takeover", "gaming", True, takeover_short, variant="short"),
        Pattern("fraud_gold_farming", "gaming", True, gold_farming_long, variant="long"),
        Pattern("fraud_chargeback_fraud", "gaming", True, chargeback_large, variant="large"),
        Pattern("fraud_card_testing", "ecommerce", True, card_testing_short, variant="short"),
        Pattern("fraud_card_testing", "ecommerce", True, card_testing_spread, variant="spread"),
        Pattern("fraud_friendly_fraud", "ecommerce", True, friendly_fraud_long, variant="long"),
        Pattern("fraud_promo_abuse", "ecommerce", True, promo_abuse_ring, variant="ring"),
        Pattern("fraud_promo_abuse", "ecommerce", True, promo_abuse_one_device, variant="one_device"),
        Pattern("fraud_structuring", "fintech", True, structuring_pair, variant="pair"),
        Pattern("fraud_structuring", "fintech", True, structuring_abroad, variant="abroad"),
        Pattern("fraud_structuring", "fintech", True, structuring_long, variant="long"),
        Pattern("fraud_money_laundering", "fintech", True, laundering_listed, variant="listed"),
        Pattern("fraud_money_laundering", "fintech", True, laundering_short, variant="short"),
        Pattern("fraud_synthetic_identity", "fintech", True, synthetic_identity_small, variant="small"),
    )
}
assert not set(VARIANTS) & set(PATTERNS), "a variant training draws is not held out"


def variant_events(config: Config, seed: int, events: int, fraud_share: float = 0.3,
                   test_id: str | None = None) -> tuple[list[dict], list[SequenceRecord]]:
    """Events of the variants among the simulator's regular traffic (``fraud_share`` of sequences in
    every domain), and the ground truth of every sequence, its variant included."""
    catalogue = {**VARIANTS, **{k: p for k, p in PATTERNS.items() if not p.is_fraud}}
    generator = EventGenerator(
        domains=DOMAINS, rate_per_s=100.0, seed=seed, test_id=test_id or f"variants-seed{seed}",
        start_time=datetime(2026, 1, 5, tzinfo=timezone.utc), fraud_share={d: fraud_share for d in DOMAINS},
        pattern_weights={}, events=events, finish_sequences=True, catalogue=catalogue)
    emitted = list(generator)
    sequences = list({id(e.sequence): e.sequence for e in emitted}.values())
    return [e.event for e in emitted], sequences
