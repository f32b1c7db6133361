"""Model features: the one definition shared by the stream and by training.

Two kinds:

- **static** features of the event itself, Spark expressions (``with_static_features``);
- **velocity** features of the actor's recent past over an event-time window
  (``velocity_features``), a pure pandas function. The stream runs it inside
  ``transformWithStateInPandas`` with each actor's window kept in the RocksDB state
  store (``VelocityProcessor``); batch code runs the very same function over whole
  actor histories (``with_velocity_batch``). Both produce identical values for the
  same events, whatever the micro-batch boundaries, as long as an actor's events
  arrive in order (Kafka keeps one actor on one partition).

Training reads these columns from silver, so it sees exactly what the stream computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming.stateful_processor import StatefulProcessor

from fraud.reference import CTR_THRESHOLD_USD, HIGH_RISK_COUNTRIES, VPN_IP_PREFIXES

# --- static features -----------------------------------------------------------

CATEGORICAL_FEATURES = ["domain", "payment_method", "item_type", "top_category", "transfer_type", "purpose",
                        "currency"]
STATIC_NUMERIC_FEATURES = [
    "f_log_amount", "f_is_vpn_ip", "f_session_s", "f_n_items", "f_total_quantity", "f_max_item_price",
    "f_n_categories", "f_ship_ne_bill", "f_is_cross_border", "f_to_high_risk_country", "f_near_ctr_threshold",
]
VELOCITY_FEATURES = [
    "v_count", "v_amount_sum", "v_amount_max", "v_amount_mean", "v_secs_since_prev", "v_distinct_dest",
    "v_distinct_users", "v_distinct_devices", "v_distinct_ips", "v_distinct_ship", "v_chain_hops",
]
NUMERIC_FEATURES = STATIC_NUMERIC_FEATURES + VELOCITY_FEATURES
# Never model inputs: ground truth and run bookkeeping (the leakage guard tests this).
NON_FEATURES = ["pattern", "is_fraud", "test_id", "sequence_position"]


def _flag(condition: Column) -> Column:
    return F.coalesce(condition.cast("double"), F.lit(0.0))


def with_static_features(events_df: DataFrame) -> DataFrame:
    """Add the per-event features (JVM expressions) to flattened silver events."""
    return events_df.select("*", *_static_feature_columns())


@lru_cache(maxsize=1)
def _static_feature_columns() -> tuple[Column, ...]:
    """Built once per process: a fresh build is a few hundred Py4J calls per micro-batch."""
    items = F.coalesce(F.col("cart_items"), F.array().cast("array<struct<product_id:string,category:string,"
                                                          "price:double,quantity:int>>"))
    top_item = F.array_max(F.transform(items, lambda i: F.struct(i["price"].alias("p"), i["category"].alias("c"))))
    ship = F.concat_ws("|", *[F.col(f"shipping_{p}") for p in ("street", "city", "state", "zip", "country")])
    bill = F.concat_ws("|", *[F.col(f"billing_{p}") for p in ("street", "city", "state", "zip", "country")])
    vpn = F.lit(False)
    for prefix in VPN_IP_PREFIXES:
        vpn = vpn | F.col("ip_address").startswith(prefix)
    return (
        F.log1p("amount").alias("f_log_amount"),
        _flag(vpn).alias("f_is_vpn_ip"),
        F.coalesce("session_length_sec", "session_duration_sec", F.lit(-1)).cast("double").alias("f_session_s"),
        F.size(items).cast("double").alias("f_n_items"),
        F.coalesce(F.aggregate(items, F.lit(0), lambda acc, i: acc + i["quantity"]), F.lit(0))
        .cast("double").alias("f_total_quantity"),
        F.coalesce(top_item["p"], F.lit(0.0)).alias("f_max_item_price"),
        F.size(F.array_distinct(F.transform(items, lambda i: i["category"]))).cast("double").alias("f_n_categories"),
        _flag(F.col("cart_items").isNotNull() & (ship != bill)).alias("f_ship_ne_bill"),
        _flag(F.col("country_from") != F.col("country_to")).alias("f_is_cross_border"),
        _flag(F.col("country_to").isin(*HIGH_RISK_COUNTRIES)).alias("f_to_high_risk_country"),
        _flag((F.col("domain") == "fintech") & (F.col("amount") >= 0.9 * CTR_THRESHOLD_USD)
              & (F.col("amount") < CTR_THRESHOLD_USD)).alias("f_near_ctr_threshold"),
        top_item["c"].alias("top_category"),
    )


# --- velocity features ------------------------------------------------------------

# What the velocity function needs of each event, selected in the JVM before the state operator.
VELOCITY_INPUTS = ["transaction_id", "actor_id", "event_time", "amount", "v_dest", "v_src", "v_user",
                   "v_device", "v_ip", "v_ship"]

STATE_SCHEMA = T.StructType([
    T.StructField("time_ms", T.ArrayType(T.LongType())),
    T.StructField("amount", T.ArrayType(T.DoubleType())),
    T.StructField("txn", T.ArrayType(T.StringType())),
    T.StructField("dest", T.ArrayType(T.StringType())),
    T.StructField("src", T.ArrayType(T.StringType())),
    T.StructField("user", T.ArrayType(T.StringType())),
    T.StructField("device", T.ArrayType(T.StringType())),
    T.StructField("ip", T.ArrayType(T.StringType())),
    T.StructField("ship", T.ArrayType(T.StringType())),
    T.StructField("hop", T.ArrayType(T.BooleanType())),
])
_STATE_KEYS = [f.name for f in STATE_SCHEMA.fields]
MAX_STATE_EVENTS = 64


def velocity_inputs(parsed_df: DataFrame) -> list[Column]:
    """The velocity function's inputs as columns of a parsed (``with_parsed_event``) frame."""
    e = "event."
    ship = F.when(F.col(f"{e}shipping_address").isNotNull(), F.to_json(F.col(f"{e}shipping_address")))
    return [
        F.col(f"{e}transaction_id").alias("transaction_id"),
        F.col(f"{e}actor_id").alias("actor_id"),
        F.col("event_time"),
        F.col(f"{e}amount").alias("amount"),
        F.col(f"{e}account_to").alias("v_dest"),
        F.col(f"{e}account_from").alias("v_src"),
        F.col(f"{e}user_id").alias("v_user"),
        F.coalesce(F.col(f"{e}device_id"), F.col(f"{e}device_fingerprint")).alias("v_device"),
        F.col(f"{e}ip_address").alias("v_ip"),
        ship.alias("v_ship"),
    ]


def velocity_features(state: dict | None, events: list[tuple], window_s: int) -> tuple[list[tuple], dict]:
    """Features of one actor's new ``events`` given its ``state``; returns (feature rows, new state).

    ``events`` are tuples ``(transaction_id, time_ms, amount, dest, src, user, device, ip, ship)``
    in event-time order. Each result row is ``(is_duplicate, *VELOCITY_FEATURES)``. A
    transaction id already in the window is a duplicate: no features, state unchanged.
    Windows are [t - window_s, t] in event time and include the event itself; events
    later than t (out of order) are not counted. Plain Python on purpose: per-actor
    pandas overhead cost ~1 ms per event, this costs microseconds.
    """
    st = {k: list(state[k]) for k in _STATE_KEYS} if state else {k: [] for k in _STATE_KEYS}
    window_ms = window_s * 1000
    rows = []
    seen = set(st["txn"])
    for txn, t, amount, dest, src, user, device, ip, ship in events:
        if txn in seen:
            rows.append(_DUPLICATE)
            continue
        idx = [j for j, tj in enumerate(st["time_ms"]) if t - window_ms <= tj <= t]
        amounts = [st["amount"][j] for j in idx]
        amounts.append(amount)
        total = sum(amounts)
        is_hop = src is not None and src in {st["dest"][j] for j in idx}
        rows.append((
            False,
            float(len(amounts)),
            total,
            max(amounts),
            total / len(amounts),
            (t - max(st["time_ms"][j] for j in idx)) / 1000.0 if idx else -1.0,
            *[float(len(({st[key][j] for j in idx} | {mine}) - {None}))
              for key, mine in (("dest", dest), ("user", user), ("device", device), ("ip", ip), ("ship", ship))],
            float(sum(st["hop"][j] for j in idx) + is_hop),
        ))
        seen.add(txn)
        for key, value in (("time_ms", t), ("amount", amount), ("txn", txn), ("dest", dest), ("src", src),
                           ("user", user), ("device", device), ("ip", ip), ("ship", ship), ("hop", is_hop)):
            st[key].append(value)
    return rows, _pruned(st, window_ms)


_DUPLICATE = (True, *([None] * len(VELOCITY_FEATURES)))


def _pruned(st: dict, window_ms: int) -> dict:
    """Keep the events a later event could still count: within the window of the newest, at most 64."""
    if not st["time_ms"]:
        return st
    newest = max(st["time_ms"])
    keep = [j for j, t in enumerate(st["time_ms"]) if t >= newest - window_ms][-MAX_STATE_EVENTS:]
    return {k: [st[k][j] for j in keep] for k in _STATE_KEYS}


# --- running it over a frame: streaming (state store) and batch ----------------------

PASS_THROUGH = T.StructType([
    T.StructField("key", T.BinaryType()),
    T.StructField("value", T.BinaryType()),
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()),
    T.StructField("timestamp", T.TimestampType()),
    T.StructField("reasons", T.ArrayType(T.StringType())),
])
VELOCITY_OUTPUT = T.StructType(
    PASS_THROUGH.fields
    + [T.StructField("transaction_id", T.StringType())]
    + [T.StructField(n, T.DoubleType()) for n in VELOCITY_FEATURES]
)


def bucket_column(num_buckets: int) -> Column:
    """Actors hashed into a few groups: per-group Python overhead, not per-actor, bounds the cost."""
    actor = F.coalesce(F.col("actor_id"), F.col("key").cast("string"), F.lit(""))
    return F.pmod(F.xxhash64(actor), F.lit(num_buckets)).cast("int").alias("bucket")


_EVENT_FIELDS = ["transaction_id", "time_ms", "amount", "v_dest", "v_src", "v_user", "v_device", "v_ip", "v_ship"]


def _process_bucket(pdf: pd.DataFrame, get_state, put_state, window_s: int) -> pd.DataFrame:
    """Velocity for every valid row of one bucket; rejected rows pass through without features."""
    pdf = pdf.reset_index(drop=True)
    reasons = [list(r) for r in pdf["reasons"]]
    values = np.full((len(pdf), len(VELOCITY_FEATURES)), np.nan)
    valid = np.fromiter((not r for r in reasons), dtype=bool, count=len(reasons))
    ordered = pdf[valid].assign(time_ms=lambda d: d["event_time"].astype("datetime64[ms]").astype("int64"))
    ordered = ordered.sort_values(["time_ms", "topic", "partition", "offset"], kind="stable")
    by_actor: dict[str, list[int]] = {}
    for position, actor in enumerate(ordered["actor_id"].tolist()):
        by_actor.setdefault(actor, []).append(position)
    columns = [ordered[c].tolist() for c in _EVENT_FIELDS]
    events = list(zip(*columns))
    row_of = ordered.index.to_numpy()
    for actor, positions in by_actor.items():
        rows, new_state = velocity_features(get_state(actor), [events[p] for p in positions], window_s)
        put_state(actor, new_state)
        for p, row in zip(positions, rows):
            if row[0]:
                reasons[row_of[p]].append("duplicate")
            else:
                values[row_of[p]] = row[1:]
    out = pdf[[f.name for f in PASS_THROUGH.fields] + ["transaction_id"]].copy()
    out["reasons"] = reasons
    out[VELOCITY_FEATURES] = values
    return out


def _velocity_frame(parsed_df: DataFrame, num_buckets: int) -> DataFrame:
    return parsed_df.select(
        *[F.col(f.name) for f in PASS_THROUGH.fields], *velocity_inputs(parsed_df)
    ).withColumn("bucket", bucket_column(num_buckets))


def with_velocity_batch(parsed_df: DataFrame, window_s: int, num_buckets: int) -> DataFrame:
    """Batch: every actor's whole history in one pass, same function, empty starting state."""
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        states: dict = {}
        return _process_bucket(pdf, states.get, states.__setitem__, window_s)

    return _velocity_frame(parsed_df, num_buckets).groupBy("bucket").applyInPandas(run, VELOCITY_OUTPUT)


def with_velocity_stream(parsed_df: DataFrame, window_s: int, num_buckets: int, ttl_s: int) -> DataFrame:
    """Streaming: actor windows live in the RocksDB state store between micro-batches."""
    return _velocity_frame(parsed_df, num_buckets).groupBy("bucket").transformWithStateInPandas(
        statefulProcessor=VelocityProcessor(window_s, ttl_s),
        outputStructType=VELOCITY_OUTPUT,
        outputMode="Append",
        timeMode="ProcessingTime",
    )


class VelocityProcessor(StatefulProcessor):
    """One state-store map per bucket: actor_id -> that actor's recent window (STATE_SCHEMA)."""

    def __init__(self, window_s: int, ttl_s: int):
        self.window_s = window_s
        self.ttl_s = ttl_s

    def init(self, handle) -> None:
        self.actors = handle.getMapState(
            "actors", T.StructType([T.StructField("actor_id", T.StringType())]), STATE_SCHEMA,
            ttlDurationMs=self.ttl_s * 1000,
        )

    def handleInputRows(self, key, rows: Iterator[pd.DataFrame], timerValues) -> Iterator[pd.DataFrame]:
        pdf = pd.concat(list(rows), ignore_index=True)

        def get_state(actor):
            value = self.actors.getValue((actor,))
            return dict(zip(_STATE_KEYS, value)) if value is not None else None

        def put_state(actor, state):
            self.actors.updateValue((actor,), tuple(state[k] for k in _STATE_KEYS))

        yield _process_bucket(pdf, get_state, put_state, self.window_s)

    def close(self) -> None:
        pass
