"""The event contract of docs/design.md §4 as code, and every layer's columns in order: one home each.

The contract is one StructType per domain, built from one table: the simulator writes exactly
these fields, the stream parses with them, tests check events against them with
``contract_violations``. Below it, the columns of each frame and table a record passes through,
in data order: the record frame (``fraud.parse``), the model's features (``fraud.features``),
silver, gold, bronze and quarantine. Code that builds a layer selects these lists or names
the expressions of their columns (tests check that what it builds is these lists, in order).
"""

from pyspark.sql import types as T

ADDRESS = T.StructType([T.StructField(name, T.StringType()) for name in ("street", "city", "state", "zip", "country")])
CART_ITEM = T.StructType([
    T.StructField("product_id", T.StringType()),
    T.StructField("category", T.StringType()),
    T.StructField("price", T.DoubleType()),
    T.StructField("quantity", T.IntegerType()),
])

COMMON_FIELDS = T.StructType([
    T.StructField("transaction_id", T.StringType()),
    T.StructField("domain", T.StringType()),
    T.StructField("test_id", T.StringType()),
    T.StructField("timestamp", T.StringType()),  # ISO-8601 with offset; parsed in the stream
    T.StructField("actor_id", T.StringType()),
    T.StructField("sequence_position", T.IntegerType()),
    T.StructField("pattern", T.StringType()),
    T.StructField("is_fraud", T.BooleanType()),
])

DOMAIN_FIELDS = {
    "gaming": T.StructType([
        T.StructField("player_id", T.StringType()),
        T.StructField("game_id", T.StringType()),
        T.StructField("item_type", T.StringType()),
        T.StructField("item_name", T.StringType()),
        T.StructField("amount", T.DoubleType()),
        T.StructField("currency", T.StringType()),
        T.StructField("payment_method", T.StringType()),
        T.StructField("ip_address", T.StringType()),
        T.StructField("device_id", T.StringType()),
        T.StructField("session_length_sec", T.IntegerType()),
    ]),
    "ecommerce": T.StructType([
        T.StructField("user_id", T.StringType()),
        T.StructField("cart_items", T.ArrayType(CART_ITEM)),
        T.StructField("amount", T.DoubleType()),
        T.StructField("currency", T.StringType()),
        T.StructField("payment_method", T.StringType()),
        T.StructField("shipping_address", ADDRESS),
        T.StructField("billing_address", ADDRESS),
        T.StructField("ip_address", T.StringType()),
        T.StructField("device_fingerprint", T.StringType()),
        T.StructField("session_duration_sec", T.IntegerType()),
    ]),
    "fintech": T.StructType([
        T.StructField("account_from", T.StringType()),
        T.StructField("account_to", T.StringType()),
        T.StructField("amount", T.DoubleType()),
        T.StructField("currency", T.StringType()),
        T.StructField("transfer_type", T.StringType()),
        T.StructField("country_from", T.StringType()),
        T.StructField("country_to", T.StringType()),
        T.StructField("purpose", T.StringType()),
        T.StructField("ip_address", T.StringType()),
    ]),
}


def _all_fields() -> T.StructType:
    """Every contract field of every domain in one struct (shared names have one type)."""
    fields: dict[str, T.StructField] = {f.name: f for f in COMMON_FIELDS.fields}
    for schema in DOMAIN_FIELDS.values():
        for field in schema.fields:
            existing = fields.setdefault(field.name, field)
            assert existing.dataType == field.dataType, f"{field.name} typed differently across domains"
    return T.StructType(list(fields.values()))


# --- the layers' columns, in data order -------------------------------------------

CONTRACT_FIELDS = _all_fields()
ADDRESS_PARTS = [(side, f.name) for side in ("shipping", "billing") for f in ADDRESS.fields]
# The flattened event: its plain fields, the parsed event time and its date, the addresses' parts,
# the amount in US dollars (``fraud.parse`` gives each its expression).
EVENT_COLUMNS = [*[f.name for f in CONTRACT_FIELDS.fields if f.name not in ("timestamp", "shipping_address",
                                                                               "billing_address")],
                 "event_time", "event_date", *[f"{side}_{part}" for side, part in ADDRESS_PARTS], "amount_usd"]
KAFKA_COLUMNS = ["key", "value", "topic", "partition", "offset", "kafka_timestamp"]
# The record frame: one per Kafka record, what the parse yields (``fraud.parse.parse_records``).
RECORD_COLUMNS = [*KAFKA_COLUMNS, "reasons", *EVENT_COLUMNS, "extra_fields"]

# The model's features (``fraud.features``). Behaviour, not vocabulary: the names a platform gives
# payment methods, item types, categories, transfer types and purposes (and its currencies) are not
# model inputs. Trained on three simulator profiles with them, the model caught 0-16 % of
# e-commerce and gaming fraud sequences on a profile with other names; without them, 96-100 %
# (benchmarks/generalisation.py, docs/model.md).
CATEGORICAL_FEATURES = ["domain"]
STATIC_NUMERIC_FEATURES = [
    "f_log_amount", "f_amount_to_mean", "f_is_vpn_ip", "f_session_s", "f_n_items", "f_total_quantity", "f_max_item_price",
    "f_n_categories", "f_ship_ne_bill", "f_is_cross_border", "f_to_high_risk_country", "f_near_ctr_threshold",
]
VELOCITY_FEATURES = [
    "v_count", "v_amount_sum", "v_amount_max", "v_amount_mean", "v_secs_since_prev", "v_distinct_dest",
    "v_distinct_users", "v_distinct_devices", "v_distinct_ips", "v_distinct_ship", "v_chain_hops",
]
# What fraud rings share, whoever the actor (``SharedWindow.java``): per shipping address, IP address,
# device and destination account, the events at that value in the window, the distinct actors and
# user ids behind them, and their amount in US dollars (0 where the event has no such attribute).
SHARED_KINDS = ["ship", "ip", "device", "dest"]
SHARED_FEATURES = [f"s_{kind}_{measure}" for kind in SHARED_KINDS for measure in ("events", "actors", "users", "amount")]
# They are not model inputs: the training history holds no ring (in the 140,000 events of `make demo`'s
# history, s_ship_actors, s_device_actors and s_dest_actors are never above 1, s_ip_actors on 1.0 % of
# rows: VPN addresses), so a model could not learn them, and as inputs they moved friendly fraud's
# event F1 to 0.67-0.69, under the gate's 0.70 (0.74 without them). The typology rules read them
# (fraud/reference/typologies.yaml), and silver keeps them for analysts and a model whose training
# data has rings.
NUMERIC_FEATURES = STATIC_NUMERIC_FEATURES + VELOCITY_FEATURES
# What ``with_static_features`` appends, in order (``top_category``, the priciest item's category, is
# kept in silver for analysts, not fed to the model).
STATIC_FEATURE_COLUMNS = [*STATIC_NUMERIC_FEATURES, "top_category"]
# Never model inputs: ground truth and run bookkeeping (the leakage guard tests this).
NON_FEATURES = ["pattern", "is_fraud", "test_id", "sequence_position"]

# Silver: the flattened event, extra fields and the record's Kafka position, the expectations it
# failed, then the features; ``batch_id`` is added per batch at the write.
SILVER_EVENT_COLUMNS = [*EVENT_COLUMNS, "extra_fields", "topic", "partition", "offset", "kafka_timestamp"]
SILVER_COLUMNS = [*SILVER_EVENT_COLUMNS, "quality_flags", *VELOCITY_FEATURES, *SHARED_FEATURES, *STATIC_FEATURE_COLUMNS]
# Gold: the scored event (``fraud.score``): the model's classes and score, the calibrated fraud
# probability and the expected loss in dollars that rank it (``fraud.severity``), the typology rules it
# matched and what raised its alert (``fraud.rules``); ``scored_at`` is set at the write.
GOLD_COLUMNS = [
    "transaction_id", "domain", "actor_id", "test_id", "event_time", "event_date", "amount", "currency",
    "kafka_timestamp", "quality_flags",
    "predicted_class", "class_probabilities", "fraud_score", "fraud_probability", "expected_loss_usd", "severity",
    "rule_hits", "raised_by", "is_alert", "model_version",
    "pattern", "is_fraud", "scored_at",
]
# Bronze: every record as it came; quarantine: the rejected ones with their reasons (``batch_id`` last in
# both, set at the write).
BRONZE_COLUMNS = ["kafka_key", "value", "topic", "partition", "offset", "kafka_timestamp", "domain", "ingest_time",
                  "ingest_date", "batch_id"]
QUARANTINE_COLUMNS = ["value", "topic", "partition", "offset", "kafka_timestamp", "reasons", "ingest_time",
                      "ingest_date", "batch_id"]


def event_schema(domain: str) -> T.StructType:
    """Common + domain fields of one domain's events."""
    return T.StructType(COMMON_FIELDS.fields + DOMAIN_FIELDS[domain].fields)


def contract_violations(event: dict) -> list[str]:
    """What in ``event`` breaks the contract (missing or badly typed fields); empty when valid.

    Extra fields are allowed (docs/design.md §4: kept, not fatal).
    """
    domain = event.get("domain")
    if domain not in DOMAIN_FIELDS:
        return [f"unknown domain {domain!r}"]
    return _check_struct(event_schema(domain), event, "")


def _check_struct(schema: T.StructType, value: dict, prefix: str) -> list[str]:
    problems = []
    for field in schema.fields:
        name = prefix + field.name
        if field.name not in value or value[field.name] is None:
            problems.append(f"{name}: missing")
        else:
            problems.extend(_check_value(field.dataType, value[field.name], name))
    return problems


def _check_value(data_type: T.DataType, value, name: str) -> list[str]:
    if isinstance(data_type, T.StructType):
        return _check_struct(data_type, value, name + ".") if isinstance(value, dict) else [f"{name}: not an object"]
    if isinstance(data_type, T.ArrayType):
        if not isinstance(value, list):
            return [f"{name}: not an array"]
        return [p for i, item in enumerate(value) for p in _check_value(data_type.elementType, item, f"{name}[{i}]")]
    expected = {
        T.StringType: (str,), T.IntegerType: (int,), T.DoubleType: (int, float), T.BooleanType: (bool,),
    }[type(data_type)]
    ok = isinstance(value, expected) and (isinstance(value, bool) == (bool in expected))
    return [] if ok else [f"{name}: expected {data_type.simpleString()}, got {type(value).__name__}"]
