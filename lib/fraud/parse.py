"""Kafka records -> typed events or rejection reasons, entirely in the JVM.

Every record gets ``reasons`` (array of codes, empty when valid):

- ``oversize``                 value larger than ``stream.max_record_bytes`` (not parsed)
- ``malformed_json``           not a JSON object
- ``unknown_domain``           ``domain`` missing from the known set
- ``domain_topic_mismatch``    a known domain on another domain's topic
- ``missing_field:<name>``     a contract field absent or null
- ``bad_type:<name>``          present but not of the contract type (Spark 4 runs in ANSI
                               mode: nothing is cast silently)
- ``out_of_range:<name>``      typed but absurd (an amount outside [``min_amount_usd``,
                               ``max_amount_usd``] US dollars or not finite, negative counts,
                               event time far from the Kafka timestamp)
- ``bad_chars:<name>``         a contract string with a C0 control character or DEL (NUL
                               included: PostgreSQL's text and jsonb refuse it); an extra
                               field with a NUL (``bad_chars:extra_fields``)
- ``too_long:<name>``          a contract string over ``stream.max_string_chars``
- ``duplicate``                a transaction id this actor already sent (set later, by
                               the state operator)

The contract decides once what every sink can store and every expression compute: a record that
passes it has finite amounts whose ratios are finite, strings that PostgreSQL's text, jsonb and
btree indexes accept (``max_string_chars`` x 4 UTF-8 bytes stays under the index's 2,704-byte row
limit), and timestamps compared as numbers, never by arithmetic that can overflow. Two kinds of
text are made storable by the parse itself: invalid UTF-8 bytes become U+FFFD, and a lone
surrogate (a ``\\ud800`` escape) becomes ``?`` (Spark's UTF-8 strings; ``tests/test_fuzz.py``).
Fields outside the contract are kept as they came: they reach the lake, never PostgreSQL.

Fields outside the contract are kept in ``extra_fields`` (map of raw JSON values). ``amount_usd``
is the amount at the currency table's rate (``fraud.reference``): amounts in any currency compare
as features; an unknown currency counts as US dollars (and is flagged ``currency_known``).

``parse_records`` is the one parse of a record: Kafka columns, ``reasons`` and the typed,
flattened event side by side (``RECORD_COLUMNS``). Everything downstream (data quality,
velocity state, silver, gold, bronze, quarantine) is a projection of that frame, so the JSON
is read once per record.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud.config import DOMAINS, Config, StreamConfig
from fraud.reference import currencies
from fraud.schemas import ADDRESS_PARTS, COMMON_FIELDS, CONTRACT_FIELDS, DOMAIN_FIELDS, EVENT_COLUMNS

_CORRUPT = "_corrupt_record"
# What ``from_json`` reads: every contract field, and the raw text of a value that is not an object.
EVENT_SCHEMA = T.StructType([*CONTRACT_FIELDS.fields, T.StructField(_CORRUPT, T.StringType())])
KNOWN_FIELDS = [f.name for f in CONTRACT_FIELDS.fields]
# Timestamps must carry their offset (Z or +hh:mm): a bare local time is ambiguous.
_ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"


# Building these expressions costs hundreds of Py4J calls (about a second on 2 cores), so each is
# built once per process and reused by every micro-batch; Columns are plain unresolved expressions.

def topic_domain(config: Config) -> Column:
    """The domain a record's topic carries."""
    return _topic_domain(tuple(config.kafka.topics.items()))


@lru_cache(maxsize=8)
def _topic_domain(topics: tuple[tuple[str, str], ...]) -> Column:
    expr = F.lit(None).cast("string")
    for domain, topic in topics:
        expr = F.when(F.col("topic") == topic, F.lit(domain)).otherwise(expr)
    return expr


def with_parsed_event(raw_df: DataFrame, config: Config) -> DataFrame:
    """Add ``event`` (typed struct), ``json_map`` (raw top-level fields) and ``reasons``."""
    for name, column in _parse_columns(tuple(config.kafka.topics.items()), config.stream,
                                       config.quality.currencies_file):
        raw_df = raw_df.withColumn(name, column)
    return raw_df


@lru_cache(maxsize=8)
def _parse_columns(topics: tuple[tuple[str, str], ...], stream: StreamConfig,
                   currencies_file: str | None) -> tuple[tuple[str, Column], ...]:
    value_str = F.col("value").cast("string")
    # Oversize records are not parsed at all; a null value (a tombstone) is a size-ok malformed record.
    size_ok = F.coalesce(F.octet_length("value") <= stream.max_record_bytes, F.lit(True))
    json_map = F.when(size_ok, F.from_json(value_str, T.MapType(T.StringType(), T.StringType())))
    event = F.when(size_ok, F.from_json(value_str, EVENT_SCHEMA, {"mode": "PERMISSIVE"}))
    return (
        ("topic_domain", _topic_domain(topics)),
        ("json_map", json_map),
        ("event", event),
        # Only a timestamp of the contract's shape (a four-digit year) is parsed: Spark parses years far
        # beyond 9999, whose conversion to a JVM timestamp in the velocity operator overflows.
        ("event_time", F.when(F.col("event.timestamp").rlike(_ISO_WITH_OFFSET),
                              F.try_to_timestamp(F.col("event.timestamp")))),
        ("reasons", _reasons(stream, currencies_file, size_ok)),
    )


def _reasons(stream: StreamConfig, currencies_file: str | None, size_ok: Column) -> Column:
    domain = F.col("event.domain")
    known_domain = domain.isin(*DOMAINS)
    checks: list[Column] = [
        F.when(~size_ok, F.lit("oversize")),
        F.when(size_ok & F.col("json_map").isNull(), F.lit("malformed_json")),
    ]
    parsed = size_ok & F.col("json_map").isNotNull()
    field_checks = [*_field_checks(None, COMMON_FIELDS)]
    for name, schema in DOMAIN_FIELDS.items():
        field_checks += _field_checks(name, schema)
    checks += [F.when(parsed & cond, F.lit(code)) for cond, code in field_checks]
    checks += [
        F.when(parsed & domain.isNotNull() & ~known_domain, F.lit("unknown_domain")),
        F.when(parsed & known_domain & (domain != F.col("topic_domain")), F.lit("domain_topic_mismatch")),
    ]
    checks += [F.when(parsed & cond, F.lit(code)) for cond, code in _range_checks(stream, currencies_file)]
    checks += [F.when(parsed & cond, F.lit(code)) for cond, code in _text_checks(stream)]
    # Extra fields are kept as they came (newlines and all), but not a NUL: no PostgreSQL text holds it.
    checks.append(F.when(parsed & _has_extra() & F.exists(F.map_entries(_extras()), lambda e: (
        e["key"].contains("\u0000") | e["value"].contains("\u0000"))), F.lit("bad_chars:extra_fields")))
    return reason_codes(checks)


def reason_codes(codes: list[Column]) -> Column:
    """The non-null values of ``codes`` (string columns), each once, in order.

    Not ``array_compact``: that is a higher-order function, which Spark evaluates row by row in
    interpreted mode together with everything under it (here ~80 conditions): measured 65 us of
    the 80 us a record's parse cost. ``array_except`` with a null is code-generated.
    """
    return F.array_except(F.array(*codes), F.array(F.lit(None).cast("string")))


def _field_checks(domain: str | None, schema: T.StructType) -> list[tuple[Column, str]]:
    """(condition, reason) pairs for missing and badly typed fields of one domain (None: common)."""
    applies = F.lit(True) if domain is None else (F.col("event.domain") == domain)
    checks = []
    for field in schema.fields:
        raw = F.col("json_map")[field.name]
        typed = F.col(f"event.{field.name}")
        checks.append((applies & raw.isNull(), f"missing_field:{field.name}"))
        checks.append((applies & raw.isNotNull() & _badly_typed(typed, field.dataType), f"bad_type:{field.name}"))
    if domain is None:
        checks.append((F.col("json_map")["timestamp"].isNotNull()
                       & (F.col("event_time").isNull() | ~F.col("event.timestamp").rlike(_ISO_WITH_OFFSET)),
                       "bad_type:timestamp"))
    return checks


def _badly_typed(typed: Column, data_type: T.DataType) -> Column:
    """A present value that did not come through typed parsing (whole or in part)."""
    if isinstance(data_type, T.StructType):
        return typed.isNull() | F.greatest(*[typed[f.name].isNull() for f in data_type.fields])
    if isinstance(data_type, T.ArrayType):
        element = data_type.elementType
        return typed.isNull() | F.exists(typed, lambda item: F.greatest(*[item[f.name].isNull() for f in element.fields]))
    return typed.isNull()


def _range_checks(stream: StreamConfig, currencies_file: str | None) -> list[tuple[Column, str]]:
    amount_usd = _amount_usd(currencies_file)
    per_usd = _per_usd(currencies_file)
    # Seconds from the Kafka timestamp to the event time, in doubles: timestamp arithmetic raises on
    # overflow in ANSI mode, and a producer chooses both values.
    skew_s = (F.unix_micros("event_time").cast("double") - F.unix_micros("timestamp").cast("double")) / 1e6
    return [
        # Impossible in any currency: an INR wire of 48 million is 550,000 US dollars. The floor also
        # rules out amounts whose conversion underflows (a subnormal or zero amount in US dollars).
        (~_usd_in_range(amount_usd, stream), "out_of_range:amount"),
        (F.col("event.sequence_position") < 0, "out_of_range:sequence_position"),
        (F.col("event.session_length_sec") < 0, "out_of_range:session_length_sec"),
        (F.col("event.session_duration_sec") < 0, "out_of_range:session_duration_sec"),
        ((skew_s < -stream.max_event_age_days * 86400.0) | (skew_s > float(stream.max_future_skew_s)),
         "out_of_range:timestamp"),
        # A price may be 0 (a free item), never negative, and never more than an amount may be.
        (F.exists("event.cart_items", lambda i: (i["quantity"] <= 0) | (i["price"] < 0) | F.isnan(i["price"])
                  | (i["price"] / per_usd > stream.max_amount_usd)),
         "out_of_range:cart_items"),
        (F.size("event.cart_items") == 0, "out_of_range:cart_items"),
    ]


def _usd_in_range(amount_usd: Column, stream: StreamConfig) -> Column:
    """False for NaN, infinities and anything outside the bounds (NaN compares as the largest double)."""
    return (amount_usd >= stream.min_amount_usd) & (amount_usd <= stream.max_amount_usd) & ~F.isnan(amount_usd)


# C0 controls and DEL: never in an id, a code or one line of an address (and a newline in an id
# forges log lines). NUL is the one PostgreSQL cannot store at all.
_CONTROL_CHARS = r"[\x00-\x1F\x7F]"


def _text_checks(stream: StreamConfig) -> list[tuple[Column, str]]:
    """``bad_chars:<field>`` and ``too_long:<field>`` for every string of the contract, nested ones
    (address parts, cart items' fields) under their field's name."""
    def any_string(data_type: T.DataType, value: Column, test) -> Column | None:
        if isinstance(data_type, T.StringType):
            return test(value)
        if isinstance(data_type, T.StructType):
            parts = [any_string(f.dataType, value[f.name], test) for f in data_type.fields]
            parts = [p for p in parts if p is not None]
            return F.greatest(*parts) if len(parts) > 1 else (parts[0] if parts else None)
        if isinstance(data_type, T.ArrayType):
            return F.exists(value, lambda item: any_string(data_type.elementType, item, test))
        return None

    checks = []
    for field in EVENT_SCHEMA.fields:
        if field.name == _CORRUPT:
            continue
        typed = F.col(f"event.{field.name}")
        for code, test in (("bad_chars", lambda v: v.rlike(_CONTROL_CHARS)),
                           ("too_long", lambda v: F.length(v) > stream.max_string_chars)):
            condition = any_string(field.dataType, typed, test)
            if condition is not None:
                checks.append((condition, f"{code}:{field.name}"))
    return checks


def _has_extra() -> Column:
    known = F.array(*[F.lit(n) for n in KNOWN_FIELDS])
    return F.size(F.array_except(F.map_keys("json_map"), known)) > 0


def _extras() -> Column:
    known = F.array(*[F.lit(n) for n in KNOWN_FIELDS])
    return F.map_filter("json_map", lambda k, v: ~F.array_contains(known, k))


@lru_cache(maxsize=1)
def _extra_fields() -> Column:
    """Fields outside the contract as raw JSON strings (docs/design.md §4: kept, not fatal); an empty map
    when there are none. ``map_filter`` (interpreted, see ``reason_codes``) runs only on the rare
    records that have extra fields: the test for them is code-generated."""
    return (F.when(_has_extra(), _extras())
            .otherwise(F.create_map().cast("map<string,string>")).alias("extra_fields"))


def parse_records(raw_df: DataFrame, config: Config) -> DataFrame:
    """Kafka-shaped records (key, value, topic, partition, offset, timestamp) -> the record frame:
    Kafka position and raw value, ``reasons``, the flattened event and ``extra_fields``."""
    return with_parsed_event(raw_df, config).select(*_record_columns(config.quality.currencies_file,
                                                                      config.stream.max_record_bytes))


@lru_cache(maxsize=4)
def _record_columns(currencies_file: str | None, max_record_bytes: int) -> tuple[Column, ...]:
    # An oversize value travels on cut to the bound (its reason says so): every batch's collect then
    # holds at most records x max_record_bytes of values (the topics refuse larger ones anyway).
    value = F.when(F.octet_length("value") > max_record_bytes, F.substring("value", 1, max_record_bytes))
    return (
        F.col("key"), value.otherwise(F.col("value")).alias("value"), F.col("topic"), F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"), F.col("reasons"), *_event_columns(currencies_file),
        _extra_fields(),
    )


def _event_columns(currencies_file: str | None) -> tuple[Column, ...]:
    """``EVENT_COLUMNS``: the typed event flattened (addresses as ``shipping_*`` / ``billing_*``), with
    ``event_date`` and ``amount_usd``."""
    derived = {"event_time": F.col("event_time"), "event_date": F.to_date("event_time"),
               "amount_usd": _amount_usd(currencies_file)}
    derived |= {f"{side}_{part}": F.col(f"event.{side}_address.{part}") for side, part in ADDRESS_PARTS}
    return tuple(derived.get(name, F.col(f"event.{name}")).alias(name) for name in EVENT_COLUMNS)


@lru_cache(maxsize=4)
def _per_usd(currencies_file: str | None) -> Column:
    """Units of the event's currency per US dollar at the currency table's rate (a map literal of the
    table; positive and finite, ``fraud.reference``); an unknown currency counts as US dollars."""
    table = currencies(currencies_file)
    per_usd = F.create_map(*[x for c in table.values() for x in (F.lit(c.code), F.lit(c.per_usd))])
    return F.coalesce(per_usd[F.col("event.currency")], F.lit(1.0))


def _amount_usd(currencies_file: str | None) -> Column:
    """The event's amount in US dollars (the divisor is never 0)."""
    return F.col("event.amount") / _per_usd(currencies_file)


# --- Kafka-shaped records built in batch (tests, notebooks, benchmarks, the quality CLI) ----------

KAFKA_RECORD_SCHEMA = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"
# A producer sends an event just after it happens: the Kafka timestamp is the event time plus this.
PRODUCE_LAG = timedelta(seconds=2)


def kafka_records(spark: SparkSession, config: Config, events: Iterable[dict | str], *,
                  values: Sequence[bytes] | None = None, partition: int = 0, first_offset: int = 0) -> DataFrame:
    """Events (dicts or JSON lines, e.g. a simulator file) as the Kafka source delivers them: key =
    actor, topic from the event's domain, consecutive offsets, Kafka time = event time + ``PRODUCE_LAG``
    (now when the event has no readable time). ``values`` replaces the value bytes one for one
    (mutated or broken records that still travel as their event would)."""
    rows = []
    for i, item in enumerate(events):
        event = json.loads(item) if isinstance(item, str) else item
        value = values[i] if values is not None else (item if isinstance(item, str) else json.dumps(item)).encode()
        actor = event.get("actor_id")
        rows.append((None if actor is None else str(actor).encode(), value,
                     config.kafka.topics.get(event.get("domain"), "unknown-topic"), partition, first_offset + i,
                     _produced_at(event.get("timestamp"))))
    return spark.createDataFrame(rows, KAFKA_RECORD_SCHEMA)


def _produced_at(timestamp) -> datetime:
    try:
        event_time = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=timezone.utc)
    return event_time + PRODUCE_LAG
