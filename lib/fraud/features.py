"""Model features: the one definition shared by the stream and by training.

Two kinds:

- **static** features of the event itself, Spark expressions (``with_static_features``);
- **velocity** features of the actor's recent past over an event-time window, computed
  by one JVM function (``jvm/src/main/java/fraud/velocity/Window.java``). The stream runs
  it in ``transformWithState`` with each actor's window kept in the RocksDB state store
  (``with_velocity_stream``); batch code runs the very same function over whole actor
  histories (``with_velocity_batch``). Both produce identical values for the same
  events, whatever the micro-batch boundaries, as long as an actor's events arrive in
  order (Kafka keeps one actor on one partition). It runs in the JVM because per-row
  Python in the state operator was the job's largest cost: with ``transformWithStateInPandas``
  the state step took 36 s for the 140,000-event demo history (parse included); the JVM
  operator adds ~3 s to the parse of 155,000 events, about 20 us per event.

Training reads these columns from silver, so it sees exactly what the stream computed.
"""

from __future__ import annotations

from functools import lru_cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fraud.reference import CTR_THRESHOLD_USD, HIGH_RISK_COUNTRIES, VPN_IP_PREFIXES
import pyarrow as pa
import pyarrow.compute as pc

from fraud.schemas import SHARED_FEATURES, SHARED_KINDS, VELOCITY_FEATURES

# --- static features -----------------------------------------------------------


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
    # Amounts in US dollars (``amount_usd``, fraud.parse): the same behaviour in JPY or CHF gives the
    # same features. Cart prices are in the event's currency: scaled by the event's own rate.
    # Every expression here is total on what the contract lets through (ANSI mode raises on a
    # division by zero and on integer overflow): amounts lie in [min_amount_usd, max_amount_usd], so
    # the ratios are finite; ``try_divide`` keeps a division total even so, and sums are doubles.
    to_usd = F.try_divide(F.col("amount_usd"), F.col("amount"))
    return (
        F.log1p("amount_usd").alias("f_log_amount"),
        # This amount against the actor's mean in the window (this event included): scale-free.
        F.try_divide(F.col("amount_usd"), F.col("v_amount_mean")).alias("f_amount_to_mean"),
        _flag(vpn).alias("f_is_vpn_ip"),
        F.coalesce("session_length_sec", "session_duration_sec", F.lit(-1)).cast("double").alias("f_session_s"),
        F.size(items).cast("double").alias("f_n_items"),
        F.coalesce(F.aggregate(items, F.lit(0.0), lambda acc, i: acc + i["quantity"].cast("double")), F.lit(0.0))
        .alias("f_total_quantity"),
        F.coalesce(top_item["p"] * to_usd, F.lit(0.0)).alias("f_max_item_price"),
        F.size(F.array_distinct(F.transform(items, lambda i: i["category"]))).cast("double").alias("f_n_categories"),
        _flag(F.col("cart_items").isNotNull() & (ship != bill)).alias("f_ship_ne_bill"),
        _flag(F.col("country_from") != F.col("country_to")).alias("f_is_cross_border"),
        _flag(F.col("country_to").isin(*HIGH_RISK_COUNTRIES)).alias("f_to_high_risk_country"),
        _flag((F.col("domain") == "fintech") & (F.col("amount_usd") >= 0.9 * CTR_THRESHOLD_USD)
              & (F.col("amount_usd") < CTR_THRESHOLD_USD)).alias("f_near_ctr_threshold"),
        top_item["c"].alias("top_category"),
    )


# --- velocity features ------------------------------------------------------------

def with_velocity_stream(records_df: DataFrame, window_s: int, ttl_s: int) -> DataFrame:
    """Streaming: each key's window lives in the state store (RocksDB) between micro-batches, dropped
    ``ttl_s`` after its last event. The output holds the records' rows and their shared-attribute
    rows (``KIND`` set): ``merge_shared`` makes them one row per record, on the driver."""
    return _velocity(records_df, "stream", window_s, ttl_s)


def with_velocity_batch(records_df: DataFrame, window_s: int) -> DataFrame:
    """Batch: every key's whole history in one pass from an empty window (training, backfills), one
    row per record."""
    out_df = _velocity(records_df, "batch", window_s)
    position = ["topic", "partition", "offset"]
    shared_df = (out_df.filter(F.col(KIND).isNotNull()).groupBy(*position)
                 .agg(*[F.max(c).alias(c) for c in SHARED_FEATURES]))
    own_df = out_df.filter(F.col(KIND).isNull()).drop(KIND, *SHARED_FEATURES)
    valid = F.size("reasons") == 0
    return own_df.join(shared_df, position, "left").select(
        *own_df.columns, *[F.when(valid, F.coalesce(c, F.lit(0.0))).alias(c) for c in SHARED_FEATURES])


KIND = "velocity_kind"  # set on the operator's shared-attribute rows (``Velocity.java``)


def merge_shared(rows: pa.Table) -> pa.Table:
    """The stream's velocity output (``with_velocity_stream``, collected as Arrow) as one row per
    record, in the records' order: each record's shared features from its attribute rows (0 where it
    has no such attribute, null on rejected records), ``KIND`` dropped. ``with_velocity_batch`` does
    the same in Spark. Rows without ``KIND`` are merged already (a batch user's frame): as they are."""
    if KIND not in rows.column_names:
        return rows
    is_shared = pc.is_valid(rows.column(KIND))
    own = rows.filter(pc.invert(is_shared)).drop_columns([KIND])
    shared = rows.filter(is_shared)
    position = ["topic", "partition", "offset"]
    index = pa.table({**{c: own.column(c) for c in position}, "_row": pa.array(range(own.num_rows), pa.int64())})
    valid = pc.equal(pc.list_value_length(own.column("reasons")), 0)
    found = _shared_by_row(index, shared, position)
    for name in SHARED_FEATURES:
        values = pc.if_else(valid, pc.fill_null(found[name], 0.0), pa.scalar(None, pa.float64()))
        own = own.set_column(own.schema.get_field_index(name), name, values)
    return own


def _shared_by_row(index: pa.Table, shared: pa.Table, position: list[str]) -> dict[str, pa.Array]:
    """Per row of ``index`` (positions and row numbers), each shared feature's value from ``shared``
    (null where none)."""
    if shared.num_rows == 0:
        return {c: pa.nulls(index.num_rows, pa.float64()) for c in SHARED_FEATURES}
    grouped = shared.select([*position, *SHARED_FEATURES]).group_by(position).aggregate(
        [(c, "max") for c in SHARED_FEATURES])
    joined = index.join(grouped, position, join_type="left outer").sort_by("_row")
    return {c: joined.column(f"{c}_max").combine_chunks() for c in SHARED_FEATURES}


def _velocity(records_df: DataFrame, mode: str, *args: int) -> DataFrame:
    """Run the JVM operator (``jvm/.../fraud/velocity``) over a record frame (``fraud.parse.parse_records``):
    the same columns back, ``duplicate`` added to the reasons of a redelivered transaction id, then
    ``VELOCITY_FEATURES`` (null on rejected records), ``SHARED_FEATURES`` and ``KIND``, on the records'
    rows and on one more row per shared attribute of each valid record (``Velocity.java``)."""
    spark = records_df.sparkSession
    velocity = spark.sparkContext._jvm.fraud.velocity.Velocity
    if list(velocity.featureNames()) != VELOCITY_FEATURES + SHARED_FEATURES:
        raise RuntimeError("fraud-jvm.jar is out of date with fraud.features: rerun scripts/setup.sh")
    prefix = velocity.SHARED_PREFIX
    inputs_df = records_df.select("*", *_velocity_inputs())
    valid = F.size("reasons") == 0
    kinds = F.array(F.lit(None).cast("string"),
                    *[F.when(valid & F.col(f"vin_{kind}").isNotNull(), F.lit(kind)) for kind in SHARED_KINDS])
    exploded = (inputs_df.select("*", F.posexplode(kinds).alias("_pos", "vin_kind"))
                .filter((F.col("_pos") == 0) | F.col("vin_kind").isNotNull()))
    own = F.col("_pos") == 0
    # An attribute row: the record's position, reasons and velocity inputs; no other column (nulls).
    carried = {"topic", "partition", "offset", "reasons"}
    shared_key = F.concat(F.lit(prefix), F.col("vin_kind"), F.lit(prefix),
                          F.coalesce(*[F.when(F.col("vin_kind") == k, F.col(f"vin_{k}")) for k in SHARED_KINDS]))
    # A valid record's actor holds no control character (the contract), so its key never starts with
    # the prefix; a rejected record's key (an actor id or a Kafka key nobody checked) might: rejected
    # records touch no state, so they all go under "" and never reach a shared window.
    own_key = F.when(valid, F.col("velocity_key")).otherwise(F.lit(""))
    operator_df = exploded.select(
        *[F.col(c) if c in carried else F.when(own, F.col(c)).alias(c) for c in records_df.columns],
        F.when(own, own_key).otherwise(shared_key).alias("velocity_key"),
        *[c for c in inputs_df.columns if c.startswith("vin_")], "vin_kind")
    return DataFrame(getattr(velocity, mode)(operator_df._jdf, *args), spark)


@lru_cache(maxsize=1)
def _velocity_inputs() -> tuple[Column, ...]:
    """What the velocity functions read of a record (the JVM operator drops these columns again);
    ``vin_ship``, ``vin_ip``, ``vin_device`` and ``vin_dest`` are also the shared attributes' values,
    compared in a canonical form (``_canonical_words``, ``_canonical_ip``, ``_canonical_account``)."""
    ship = F.struct(*[_canonical_words(F.col(f"shipping_{p}")).alias(p)
                      for p in ("street", "city", "state", "zip", "country")])
    return (
        # Rejected records may lack an actor; they pass through without touching any state.
        F.coalesce(F.col("actor_id"), F.col("key").cast("string"), F.lit("")).alias("velocity_key"),
        F.col("transaction_id").alias("vin_txn"),
        F.col("event_time").alias("vin_time"),
        F.col("amount_usd").alias("vin_amount"),
        _canonical_account(F.col("account_to")).alias("vin_dest"),
        _canonical_account(F.col("account_from")).alias("vin_src"),
        F.col("user_id").alias("vin_user"),
        _nonblank(F.lower(F.trim(F.coalesce(F.col("device_id"), F.col("device_fingerprint"))))).alias("vin_device"),
        _canonical_ip(F.col("ip_address")).alias("vin_ip"),
        F.when(F.col("shipping_street").isNotNull(), F.to_json(ship)).alias("vin_ship"),
        F.col("actor_id").alias("vin_actor"),
    )


# A ring's members are not one producer: "1 OAK ST." and "1 Oak St" are one shipping address,
# "DE89 3704 0044 0532 0130 00" and "de89370400440532013000" one account. Shared attributes (and the
# actor's distinct counts) compare values after removing what does not change which value it is.
# Street-suffix spellings ("Street" / "St", USPS Publication 28) are not unified: that is an address
# standardiser's work, and a per-word mapping here would be interpreted, not compiled, per record.


def _nonblank(column: Column) -> Column:
    return F.nullif(column, F.lit(""))


def _canonical_words(column: Column) -> Column:
    """Lower case, letters and digits only: every other run of characters is one space."""
    return _nonblank(F.trim(F.regexp_replace(F.lower(column), r"[^\p{L}\p{N}]+", " ")))


def _canonical_ip(column: Column) -> Column:
    """Lower case (IPv6 hex digits), no surrounding space, an IPv4-mapped IPv6 address as the IPv4 one.
    IPv6 zero compression is not undone: one producer writes one form."""
    return _nonblank(F.regexp_replace(F.lower(F.trim(column)), r"^::ffff:(?=[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$)", ""))


def _canonical_account(column: Column) -> Column:
    """Upper case without spaces or hyphens: an IBAN's electronic form (ISO 13616-1), and how account
    numbers are compared whatever their grouping."""
    return _nonblank(F.upper(F.regexp_replace(column, r"[\s-]+", "")))
