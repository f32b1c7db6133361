"""Velocity features: the pure function the stream and training share."""

import datetime as dt

import pandas as pd
from chispa import assert_approx_df_equality

from fraud.features import VELOCITY_FEATURES, velocity_features, with_static_features

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def event(txn, seconds, amount=10.0, dest=None, src=None, user=None, device=None, ip="1.1.1.1", ship=None):
    return (txn, T0 + int(seconds * 1000), amount, dest, src, user, device, ip, ship)


def features(rows):
    return [dict(zip(["is_duplicate", *VELOCITY_FEATURES], r)) for r in rows]


def test_window_counts_sums_and_gaps():
    rows, state = velocity_features(None, [event("a", 0, 5.0), event("b", 10, 7.0), event("c", 400, 1.0)], 300)
    first, second, third = features(rows)
    assert first["v_count"] == 1 and first["v_secs_since_prev"] == -1.0 and first["v_amount_sum"] == 5.0
    assert second["v_count"] == 2 and second["v_amount_sum"] == 12.0 and second["v_amount_max"] == 7.0
    assert second["v_secs_since_prev"] == 10.0 and second["v_amount_mean"] == 6.0
    assert third["v_count"] == 1, "events older than the window do not count"
    assert state["txn"] == ["c"], "state keeps only what a later event could still see"


def test_state_carries_across_batches_like_one_batch():
    events = [event(str(i), i * 7, float(i), dest=f"d{i % 3}", src=f"d{(i + 2) % 3}") for i in range(12)]
    whole, _ = velocity_features(None, events, 300)
    part1, state = velocity_features(None, events[:5], 300)
    part2, _ = velocity_features(state, events[5:], 300)
    assert part1 + part2 == whole


def test_duplicates_distinct_counts_and_chain_hops():
    events = [
        event("t1", 0, 100.0, dest="acct-2", src="acct-1"),
        event("t2", 5, 100.0, dest="acct-3", src="acct-2"),  # hop: the previous destination sends on
        event("t2", 6, 100.0, dest="acct-3", src="acct-2"),  # producer retry
        event("t3", 9, 100.0, dest="acct-4", src="acct-9", user=None),
    ]
    rows = features(velocity_features(None, events, 300)[0])
    assert [r["is_duplicate"] for r in rows] == [False, False, True, False]
    assert rows[2]["v_count"] is None
    assert rows[1]["v_chain_hops"] == 1.0 and rows[3]["v_chain_hops"] == 1.0
    assert rows[3]["v_distinct_dest"] == 3.0 and rows[3]["v_distinct_users"] == 0.0 and rows[3]["v_distinct_ips"] == 1.0


def test_out_of_order_event_counts_only_the_past():
    rows = features(velocity_features(None, [event("late-later", 100), event("early", 50)], 300)[0])
    assert rows[1]["v_count"] == 1.0, "an event does not see events later than itself"


def test_static_features(spark):
    schema = ("domain string, amount double, ip_address string, session_length_sec int, session_duration_sec int, "
              "cart_items array<struct<product_id:string,category:string,price:double,quantity:int>>, "
              + ", ".join(f"{side}_{p} string" for side in ("shipping", "billing")
                          for p in ("street", "city", "state", "zip", "country"))
              + ", country_from string, country_to string")
    addr = ("1 Oak St", "Austin", "TX", "73301", "US")
    other = ("9 Elm St", "Boston", "MA", "02101", "US")
    rows = [
        ("ecommerce", 30.0, "185.220.101.7", None, 60, [("p1", "books", 10.0, 1), ("p2", "toys", 20.0, 1)],
         *addr, *other, None, None),
        ("fintech", 9800.0, "24.1.1.1", None, None, None, *([None] * 10), "US", "KY"),
        ("gaming", None, None, 300, None, None, *([None] * 10), None, None),
    ]
    out_df = with_static_features(spark.createDataFrame(rows, schema)).select(
        "f_is_vpn_ip", "f_session_s", "f_n_items", "f_max_item_price", "f_ship_ne_bill", "f_to_high_risk_country",
        "f_near_ctr_threshold", "top_category")
    expected_df = spark.createDataFrame([
        (1.0, 60.0, 2.0, 20.0, 1.0, 0.0, 0.0, "toys"),
        (0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, None),
        (0.0, 300.0, 0.0, 0.0, 0.0, 0.0, 0.0, None),
    ], out_df.schema)
    assert_approx_df_equality(out_df, expected_df, 1e-9, ignore_nullable=True)
