"""The event contract of docs/design.md §4 as code: one StructType per domain, built from one table.

The simulator writes exactly these fields; the stream parses with them; tests check
events against them with ``contract_violations``.
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
