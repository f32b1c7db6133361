"""Why an alert fired, in words: each of its ``top_features`` (fraud.driver_scorer: the model inputs that
raised the predicted class's probability the most) as a phrase with the transaction's value."""

from __future__ import annotations

import math
from collections.abc import Callable

# Amounts are in US dollars (fraud.features converts every currency); the velocity window is the
# stream's (``stream.velocity_window_s``), written as ``{w}``.
_PHRASES: dict[str, Callable[[float], str]] = {
    "f_log_amount": lambda v: f"amount of about ${math.expm1(v):,.0f}",
    "f_amount_to_mean": lambda v: f"{v:.1f}x the actor's mean amount in {{w}}",
    "f_is_vpn_ip": lambda v: "from a VPN address" if v else "not from a VPN address",
    "f_session_s": lambda v: "no session length" if v < 0 else f"a session of {v:,.0f} s",
    "f_n_items": lambda v: f"{v:.0f} items in the cart",
    "f_total_quantity": lambda v: f"{v:.0f} units in the cart",
    "f_max_item_price": lambda v: f"priciest item ${v:,.0f}",
    "f_n_categories": lambda v: f"{v:.0f} item categories",
    "f_ship_ne_bill": lambda v: "shipping address differs from billing" if v else "shipping address is billing",
    "f_is_cross_border": lambda v: "a cross-border transfer" if v else "a domestic transfer",
    "f_to_high_risk_country": lambda v: "to a high-risk country" if v else "not to a high-risk country",
    "f_near_ctr_threshold": lambda v: ("amount just under the reporting threshold" if v
                                       else "amount not near the reporting threshold"),
    "v_count": lambda v: f"{v:.0f} transactions by this actor in {{w}}",
    "v_amount_sum": lambda v: f"${v:,.0f} in all by this actor in {{w}}",
    "v_amount_max": lambda v: f"largest amount ${v:,.0f} in {{w}}",
    "v_amount_mean": lambda v: f"mean amount ${v:,.0f} in {{w}}",
    "v_secs_since_prev": lambda v: "first transaction in {w}" if v < 0 else f"{v:,.0f} s after the previous one",
    "v_distinct_dest": lambda v: f"{v:.0f} different recipients in {{w}}",
    "v_distinct_users": lambda v: f"{v:.0f} different users in {{w}}",
    "v_distinct_devices": lambda v: f"{v:.0f} different devices in {{w}}",
    "v_distinct_ips": lambda v: f"{v:.0f} different IP addresses in {{w}}",
    "v_distinct_ship": lambda v: f"{v:.0f} different shipping addresses in {{w}}",
    "v_chain_hops": lambda v: f"{v:.0f} hops in a chain of transfers",
}

def window_words(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def phrase(feature: str, value, window_s: int) -> str:
    """One input and its value as words; a feature without a phrase (a model input added later) is
    shown by its name."""
    if value is None:
        return f"{feature} not known"
    if feature == "domain":
        return f"a {value} transaction"
    words = _PHRASES.get(feature)
    if words is None or not isinstance(value, (int, float)):
        return f"{feature} = {value}"
    return words(float(value)).replace("{w}", window_words(window_s))


def reasons(top_features: list[dict] | None, window_s: int) -> list[str]:
    """``top_features`` as phrases with their share of the probability: "12 transactions by this
    actor in 5 min (+0.31)"."""
    return [f"{phrase(f['feature'], f['value'], window_s)} (+{f['contribution']:.2f})" for f in top_features or []]
