"""Features: the velocity function (JVM, run here through its batch path) and the static features."""

import datetime as dt
import math

from chispa import assert_approx_df_equality

from fraud.features import with_static_features, with_velocity_batch
from fraud.schemas import VELOCITY_FEATURES

T0 = dt.datetime(2026, 1, 1)

# A record frame with just what the velocity operator reads (fraud.schemas.RECORD_COLUMNS has more).
RECORD_DDL = ("key binary, topic string, partition int, offset long, reasons array<string>, transaction_id string, "
              "actor_id string, event_time timestamp, amount_usd double, account_to string, account_from string, "
              "user_id string, device_id string, device_fingerprint string, ip_address string, "
              + ", ".join(f"shipping_{p} string" for p in ("street", "city", "state", "zip", "country")))


def record(txn, seconds, amount=10.0, actor="a1", dest=None, src=None, user=None, device=None, ip="1.1.1.1",
           ship=None, reasons=(), offset=None):
    address = (ship, "Austin", "TX", "73301", "US") if ship else (None,) * 5
    return (actor.encode() if actor else None, "t", 0, offset if offset is not None else int(seconds * 10),
            list(reasons), txn, actor, T0 + dt.timedelta(seconds=seconds), amount, dest, src, user, device, None, ip,
            *address)


def velocity(spark, records):
    """Rows by transaction id (a duplicate id appears twice: rows in offset order)."""
    out = with_velocity_batch(spark.createDataFrame(records, RECORD_DDL), 300).orderBy("offset").collect()
    by_txn = {}
    for r in out:
        by_txn.setdefault(r["transaction_id"], []).append(r)
    return by_txn


def test_window_counts_sums_and_gaps(spark):
    rows = velocity(spark, [record("a", 0, 5.0), record("b", 10, 7.0), record("c", 400, 1.0)])
    (first,), (second,), (third,) = rows["a"], rows["b"], rows["c"]
    assert first["v_count"] == 1 and first["v_secs_since_prev"] == -1.0 and first["v_amount_sum"] == 5.0
    assert second["v_count"] == 2 and second["v_amount_sum"] == 12.0 and second["v_amount_max"] == 7.0
    assert second["v_secs_since_prev"] == 10.0 and second["v_amount_mean"] == 6.0
    assert third["v_count"] == 1, "events older than the window do not count"
    assert [c for c in first.asDict() if c.startswith("v")] == VELOCITY_FEATURES, "inputs dropped, features appended"


def test_actors_are_independent_and_order_is_event_time(spark):
    rows = velocity(spark, [record("x2", 20, actor="x", offset=1), record("x1", 10, actor="x", offset=2),
                            record("y1", 15, actor="y", offset=3)])
    assert rows["x1"][0]["v_count"] == 1 and rows["x2"][0]["v_count"] == 2, "sorted by event time, not arrival"
    assert rows["x2"][0]["v_secs_since_prev"] == 10.0
    assert rows["y1"][0]["v_count"] == 1, "another actor's events are not counted"


def test_duplicates_distinct_counts_and_chain_hops(spark):
    rows = velocity(spark, [
        record("t1", 0, 100.0, dest="acct-2", src="acct-1", ship="1 Oak St"),
        record("t2", 5, 100.0, dest="acct-3", src="acct-2", ship="9 Elm St"),  # hop: the previous destination sends on
        record("t2", 6, 100.0, dest="acct-3", src="acct-2"),  # producer retry
        record("t3", 9, 100.0, dest="acct-4", src="acct-9", user=None),
    ])
    original, retry = rows["t2"]
    assert original["reasons"] == [] and retry["reasons"] == ["duplicate"]
    assert retry["v_count"] is None and original["v_count"] == 2
    assert original["v_chain_hops"] == 1.0 and rows["t3"][0]["v_chain_hops"] == 1.0
    t3 = rows["t3"][0]
    assert t3["v_distinct_dest"] == 3.0 and t3["v_distinct_users"] == 0.0 and t3["v_distinct_ips"] == 1.0
    assert t3["v_distinct_ship"] == 2.0 and t3["v_count"] == 3.0, "the retry did not enter the window"


def test_out_of_order_event_counts_only_the_past(spark):
    rows = velocity(spark, [record("late-later", 100, offset=1), record("early", 50, offset=2)])
    assert rows["early"][0]["v_count"] == 1.0, "an event does not see events later than itself"
    assert rows["late-later"][0]["v_count"] == 2.0


def test_rejected_records_pass_through_without_features_or_state(spark):
    rows = velocity(spark, [
        record("ok-1", 0),
        record("bad", 1, reasons=["bad_type:amount"], amount=None),
        record("no-actor", 2, actor=None, reasons=["missing_field:actor_id"]),
        record("ok-2", 3),
    ])
    assert rows["bad"][0]["reasons"] == ["bad_type:amount"] and rows["bad"][0]["v_count"] is None
    assert rows["no-actor"][0]["v_count"] is None
    assert rows["ok-2"][0]["v_count"] == 2.0, "the rejected record is not in the window"


def test_window_keeps_at_most_64_events(spark):
    rows = velocity(spark, [record(f"e{i:03}", i) for i in range(100)])
    assert rows["e099"][0]["v_count"] == 65.0, "64 kept events plus the event itself"
    assert rows["e063"][0]["v_count"] == 64.0


def test_many_accounts_behind_one_address_ip_device_or_destination(spark):
    """Shared-attribute features (SharedWindow.java): per shipping address, IP, device and destination
    account, whoever the actor; 0 where the event has no such attribute; null on rejected records."""
    rows = velocity(spark, [
        record("r1", 0, 20.0, actor="acct-1", user="u1", ship="1 Oak St", ip="9.9.9.9", device="d1"),
        record("r2", 5, 30.0, actor="acct-2", user="u2", ship="1 Oak St", ip="9.9.9.9", device="d2"),
        record("r3", 9, 50.0, actor="acct-3", user="u3", ship="1 Oak St", ip="9.9.9.9", device="d2"),
        record("r2", 10, 30.0, actor="acct-2", user="u2", ship="1 Oak St", ip="9.9.9.9", device="d2"),  # a retry
        record("other", 11, 5.0, actor="acct-4", ship="7 Elm St", ip="8.8.8.8"),
        record("late", 400, 5.0, actor="acct-5", ship="1 Oak St", ip="9.9.9.9"),
        record("wire-1", 12, 9000.0, actor="acct-6", dest="mule", ip=None),
        record("wire-2", 13, 9500.0, actor="acct-7", dest="mule", ip=None),
        record("bad", 14, ship="1 Oak St", reasons=["bad_type:amount"]),
        # Another account reusing an id already seen at the address (ids are one actor's): counted.
        record("r1", 15, 10.0, actor="acct-8", user="u8", ship="1 Oak St", ip="9.9.9.9", device="d8"),
        # A rejected record whose actor looks like a shared key: passes through, stops nothing.
        record("hostile", 16, actor="\x01ship\x01x", ship="1 Oak St", reasons=["bad_chars:actor_id"]),
    ])
    third = rows["r3"][0]
    assert (third["s_ship_events"], third["s_ship_actors"], third["s_ship_users"], third["s_ship_amount"]) == \
        (3.0, 3.0, 3.0, 100.0), "three accounts and users behind one address"
    assert third["s_ip_actors"] == 3.0 and third["s_device_events"] == 2.0 and third["s_device_actors"] == 2.0
    assert third["s_dest_events"] == 0.0, "no destination account: 0, not null"
    assert rows["other"][0]["s_ship_actors"] == 1.0 and rows["other"][0]["s_ip_events"] == 1.0
    assert rows["late"][0]["s_ship_events"] == 1.0, "events older than the window do not count"
    assert (rows["wire-2"][0]["s_dest_events"], rows["wire-2"][0]["s_dest_actors"],
            rows["wire-2"][0]["s_dest_amount"]) == (2.0, 2.0, 18500.0), "two senders to one account"
    original, retry = rows["r2"]
    assert retry["reasons"] == ["duplicate"] and retry["s_ship_events"] is None
    assert rows["bad"][0]["s_ship_events"] is None and original["s_ship_events"] == 2.0
    reused = next(r for r in rows["r1"] if r["actor_id"] == "acct-8")
    assert reused["reasons"] == [] and reused["s_ship_actors"] == 4.0, "acct-1..3 and acct-8"
    assert rows["hostile"][0]["reasons"] == ["bad_chars:actor_id"] and rows["hostile"][0]["s_ship_events"] is None


def test_shared_values_are_compared_as_one_whatever_their_spelling(spark):
    """Three accounts write one address, IP, device and destination account each their own way: one
    value each (case, spacing, punctuation, an IPv4-mapped IPv6 address, an IBAN in groups); another
    street number, IP, device or account is another value."""
    rows = velocity(spark, [
        record("a", 0, actor="acct-1", ship="1 Oak St", ip="::FFFF:9.9.9.9", device="AB-12",
               dest="DE89 3704 0044 0532 0130 00"),
        record("b", 1, actor="acct-2", ship="1 OAK ST.", ip=" 9.9.9.9", device="ab-12", dest="de89370400440532013000"),
        record("c", 2, actor="acct-3", ship="  1, oak   st ", ip="9.9.9.9", device=" Ab-12 ",
               dest="DE89-3704-0044-0532-0130-00"),
        record("d", 3, actor="acct-4", ship="11 Oak St", ip="9.9.9.90", device="ab-120", dest="DE89370400440532013001"),
    ])
    third = rows["c"][0]
    assert (third["s_ship_actors"], third["s_ip_actors"], third["s_device_actors"], third["s_dest_actors"]) == \
        (3.0, 3.0, 3.0, 3.0)
    other = rows["d"][0]
    assert (other["s_ship_actors"], other["s_ip_actors"], other["s_device_actors"], other["s_dest_actors"]) == \
        (1.0, 1.0, 1.0, 1.0)


def test_the_streams_merge_on_the_driver_equals_the_batch_merge(spark):
    """The stream gets the operator's rows (a record's own and its attribute rows) and merges them on the
    driver (``merge_shared``); batch merges in Spark: the same rows, column for column."""
    from fraud.features import _velocity, merge_shared

    records_df = spark.createDataFrame([
        record("a", 0, ship="1 Oak St", device="d1", actor="p"), record("b", 3, ship="1 Oak St", actor="q"),
        record("c", 4, dest="x", actor="r"), record("d", 5, reasons=["malformed_json"], actor=None),
        record("a", 6, ship="1 Oak St", device="d1", actor="p")], RECORD_DDL)
    merged = merge_shared(_velocity(records_df, "batch", 300).toArrow()).sort_by("offset")
    batch = with_velocity_batch(records_df, 300).toArrow().sort_by("offset")
    assert merged.column_names == batch.column_names
    assert merged.to_pylist() == batch.to_pylist()


def test_static_features(spark):
    """Amounts count in US dollars (``amount_usd``): a JPY cart and a CHF wire look like their USD twins."""
    schema = ("domain string, amount double, amount_usd double, v_amount_mean double, ip_address string, "
              "session_length_sec int, session_duration_sec int, "
              "cart_items array<struct<product_id:string,category:string,price:double,quantity:int>>, "
              + ", ".join(f"{side}_{p} string" for side in ("shipping", "billing")
                          for p in ("street", "city", "state", "zip", "country"))
              + ", country_from string, country_to string")
    addr = ("1 Oak St", "Austin", "TX", "73301", "US")
    other = ("9 Elm St", "Boston", "MA", "02101", "US")
    rows = [
        ("ecommerce", 4500.0, 30.0, 15.0, "185.220.101.7", None, 60,
         [("p1", "books", 1500.0, 1), ("p2", "toys", 3000.0, 1)], *addr, *other, None, None),
        ("fintech", 7840.0, 9800.0, 9800.0, "24.1.1.1", None, None, None, *([None] * 10), "US", "KY"),
        ("gaming", 5.0, 5.0, 10.0, None, 300, None, None, *([None] * 10), None, None),
    ]
    out_df = with_static_features(spark.createDataFrame(rows, schema)).select(
        "f_log_amount", "f_amount_to_mean", "f_is_vpn_ip", "f_session_s", "f_n_items", "f_max_item_price",
        "f_ship_ne_bill", "f_to_high_risk_country", "f_near_ctr_threshold", "top_category")
    expected_df = spark.createDataFrame([
        (math.log1p(30.0), 2.0, 1.0, 60.0, 2.0, 20.0, 1.0, 0.0, 0.0, "toys"),
        (math.log1p(9800.0), 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, None),
        (math.log1p(5.0), 0.5, 0.0, 300.0, 0.0, 0.0, 0.0, 0.0, 0.0, None),
    ], out_df.schema)
    assert_approx_df_equality(out_df, expected_df, 1e-9, ignore_nullable=True)
