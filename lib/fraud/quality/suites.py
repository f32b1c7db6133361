"""The expectation suites, built in code: the event expectations on silver-shaped rows, the training set.

``Suite`` holds a name and named expectations: the name is the quality flag (or quarantine reason
``expectation:<name>``) and the row key in reports. The event suite's expectations are plain data
(``RowExpectation``), so the stream checks every batch without importing Great Expectations (~11 s
on 2 cores: pandas, scipy, altair and a pydantic model per expectation class, on every start of
the job before this); ``fraud.quality.checks`` turns them into Spark columns,
``fraud.quality.validator`` into GX expectations when a GX checkpoint runs. The training suites,
used by the training gate only, are GX expectations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fraud.config import DOMAINS, Config
from fraud.schemas import NUMERIC_FEATURES
from fraud.reference import currencies

EVENT_SUITE = "event_expectations"
TRAINING_SUITE = "training_set"
CLASSES_SUITE = "training_classes"

# Structural limits of an e-commerce cart: beyond them a row is flagged (cart_size, cart_items_well_formed).
MAX_CART_ITEMS = 100
MAX_ITEM_QUANTITY = 1_000
COUNTRY_CODE = r"^[A-Z]{2}$"
IP_ADDRESS = r"^[0-9A-Fa-f:.]{3,45}$"


# The row-level kinds, by Great Expectations' expectation types: each marks single rows unexpected.
NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
MATCH_REGEX = "expect_column_values_to_match_regex"


@dataclass(frozen=True)
class RowExpectation:
    """One row-level expectation with GX's semantics: of the rows ``where`` selects, a row is
    unexpected when its ``column`` fails the check; a null value fails only ``NOT_NULL``.
    Bounds are inclusive."""

    name: str
    type: str  # NOT_NULL | BETWEEN | IN_SET | MATCH_REGEX
    column: str
    value_set: tuple = ()
    min_value: float | None = None
    max_value: float | None = None
    regex: str | None = None
    where: tuple[str, str, str] | None = None  # (column, "==" or "!=", value); None: every row


def _named(expectation, name: str):
    """A GX expectation with its stable name (the row key in reports)."""
    expectation.meta = {**(expectation.meta or {}), "name": name}
    return expectation


def _domain_is(domain: str) -> tuple[str, str, str]:
    return ("domain", "==", domain)


def with_quality_columns(silver_df: DataFrame, config: Config) -> DataFrame:
    """Derived columns the event suite checks (GX has no expectations over arrays or a lookup in the
    currency table); ``amount_usd`` comes with the record (``fraud.parse``)."""
    q = config.quality
    return silver_df.select("*", *_quality_columns(q.currencies_file, q.expected_values.cart_category))


@lru_cache(maxsize=8)
def _quality_columns(currencies_file: str | None, categories: tuple[str, ...]) -> tuple[Column, ...]:
    """Built once per process and config: the currency maps are a few hundred literals."""
    table = currencies(currencies_file)
    minor_unit_scale = F.create_map(*[x for c in table.values() for x in (F.lit(c.code), F.lit(10.0 ** c.minor_units))])
    items = F.col("cart_items")
    bad_item = lambda i: (i["product_id"].isNull() | F.isnan(i["price"]) | (i["price"] <= 0)  # noqa: E731
                          | (i["quantity"] < 1) | (i["quantity"] > MAX_ITEM_QUANTITY))
    amount = F.col("amount")
    return (
        # Seconds from the event to its Kafka record: negative when the producer's clock runs ahead.
        # In doubles: the difference of two extreme timestamps overflows a long (ANSI mode raises).
        ((F.unix_micros("kafka_timestamp").cast("double") - F.unix_micros("event_time").cast("double")) / 1e6)
        .alias("event_age_s"),
        _below_minor_unit(amount * minor_unit_scale[F.col("currency")], minor_unit_scale[F.col("currency")]),
        F.when(items.isNotNull(), F.size(items)).alias("cart_item_count"),
        F.when(items.isNotNull(), F.size(F.filter(items, lambda i: F.coalesce(bad_item(i), F.lit(True)))))
        .alias("cart_bad_items"),
        F.when(items.isNotNull(), F.size(F.filter(items, lambda i: ~F.coalesce(i["category"].isin(*categories),
                                                                                F.lit(False)))))
        .alias("cart_unknown_categories"),
    )


def _below_minor_unit(in_minor_units: Column, scale: Column) -> Column:
    """What an amount carries beyond its currency's minor unit (12.345 USD: 0.005; 1500.5 JPY: 0.5),
    0 when nothing. ``round`` takes no per-row scale, so the amount is counted in minor units; the
    tolerance absorbs binary floating point (19.99 * 100 = 1998.9999999999998)."""
    excess = F.abs(in_minor_units - F.round(in_minor_units))
    tolerance = F.greatest(F.lit(1e-6), F.abs(in_minor_units) * 1e-12)
    return F.when(excess > tolerance, excess / scale).otherwise(F.lit(0.0)).alias("amount_below_minor_unit")


@dataclass(frozen=True)
class Suite:
    """A suite's name and expectations (``RowExpectation``s or GX expectations); ``Validator``
    registers it as a GX ExpectationSuite (GX only lets a suite collect expectations inside a data
    context)."""

    name: str
    expectations: list = field(default_factory=list)

    def add_expectation(self, expectation) -> None:
        self.expectations.append(expectation)


def event_suite(config: Config) -> Suite:
    """Expectations on contract-valid, silver-shaped rows (``with_quality_columns``): what the traffic
    is expected to look like. A row failing one is flagged or quarantined (``quality.actions``).

    What the contract already guarantees of these rows (fields present and typed, a known domain,
    positions and event times in range: ``fraud.parse``) is not repeated here."""
    q = config.quality
    expected = q.expected_values
    suite = Suite(EVENT_SUITE)
    add = lambda *args, **kwargs: suite.add_expectation(RowExpectation(*args, **kwargs))  # noqa: E731
    # Currencies and amounts: the currency table (fraud.reference) rather than a list of three.
    add("currency_known", IN_SET, "currency", value_set=tuple(sorted(currencies(q.currencies_file))))
    add("amount_minor_units", BETWEEN, "amount_below_minor_unit", min_value=0, max_value=0)
    for domain in DOMAINS:
        add(f"amount_range_{domain}", BETWEEN, "amount_usd", max_value=q.max_amount_usd[domain],
            where=_domain_is(domain))
    # Clock skew smaller than the contract's limit (stream.max_future_skew_s) but more than expected.
    add("event_time_skew", BETWEEN, "event_age_s", min_value=-float(q.max_clock_skew_s))
    add("ip_address_format", MATCH_REGEX, "ip_address", regex=IP_ADDRESS)
    # Enumerations per domain (quality.expected_values).
    add("payment_method_known", IN_SET, "payment_method", value_set=expected.payment_method,
        where=("domain", "!=", "fintech"))
    add("item_type_known", IN_SET, "item_type", value_set=expected.item_type, where=_domain_is("gaming"))
    add("transfer_type_known", IN_SET, "transfer_type", value_set=expected.transfer_type, where=_domain_is("fintech"))
    for column in ("country_from", "country_to"):
        add(f"{column}_format", MATCH_REGEX, column, regex=COUNTRY_CODE, where=_domain_is("fintech"))
    # E-commerce: both addresses complete, ISO country codes; a cart of well-formed items.
    for side in ("shipping", "billing"):
        for part in ("street", "city", "zip"):
            add(f"{side}_{part}_not_null", NOT_NULL, f"{side}_{part}", where=_domain_is("ecommerce"))
        add(f"{side}_country_format", MATCH_REGEX, f"{side}_country", regex=COUNTRY_CODE,
            where=_domain_is("ecommerce"))
    add("cart_size", BETWEEN, "cart_item_count", min_value=1, max_value=MAX_CART_ITEMS, where=_domain_is("ecommerce"))
    add("cart_items_well_formed", BETWEEN, "cart_bad_items", min_value=0, max_value=0, where=_domain_is("ecommerce"))
    add("cart_categories_known", BETWEEN, "cart_unknown_categories", min_value=0, max_value=0,
        where=_domain_is("ecommerce"))
    return suite


# Feature ranges of the model inputs (fraud.features): flags are 0/1, -1 marks "absent".
_FLAGS = ["f_is_vpn_ip", "f_ship_ne_bill", "f_is_cross_border", "f_to_high_risk_country", "f_near_ctr_threshold"]
FEATURE_RANGES = {
    **{flag: (0.0, 1.0) for flag in _FLAGS},
    "f_log_amount": (0.0, 25.0), "f_amount_to_mean": (0.0, None), "f_session_s": (-1.0, None), "f_n_items": (0.0, None),
    "f_total_quantity": (0.0, None), "f_max_item_price": (0.0, None), "f_n_categories": (0.0, None),
    "v_count": (1.0, None), "v_amount_sum": (0.0, None), "v_amount_max": (0.0, None), "v_amount_mean": (0.0, None),
    "v_secs_since_prev": (-1.0, None), "v_distinct_dest": (0.0, None), "v_distinct_users": (0.0, None),
    "v_distinct_devices": (0.0, None), "v_distinct_ips": (0.0, None), "v_distinct_ship": (0.0, None),
    "v_chain_hops": (0.0, None),
}
# Categorical inputs absent by design in some domains (a fintech event has no payment method)
# are filled in the model pipeline; these two exist everywhere.
REQUIRED_CATEGORICAL = ["domain", "currency"]


def input_problems() -> dict[str, str]:
    """Spark SQL predicate per model input: null, or outside its range."""
    problems = {}
    for column in NUMERIC_FEATURES + REQUIRED_CATEGORICAL:
        low, high = FEATURE_RANGES.get(column, (None, None))
        parts = [f"`{column}` IS NULL"]
        parts += [f"`{column}` < {low}"] if low is not None else []
        parts += [f"`{column}` > {high}"] if high is not None else []
        parts += [f"isnan(`{column}`)"] if column in NUMERIC_FEATURES else []
        problems[column] = " OR ".join(parts)
    return problems


def training_suites(config: Config, classes: list[str]) -> tuple[Suite, Suite]:
    """(suite on the labelled rows, suite on their class counts).

    Nulls and ranges of the ~25 model inputs are two SQL expectations (one Spark query
    each) rather than ~50 column expectations: on the Spark engine GX pays a job or more
    per expectation. The gate's message names the columns at fault (``gate_training_set``).
    """
    import great_expectations.expectations as gxe  # see the module's docstring: only the gate needs it

    q = config.quality
    assert set(FEATURE_RANGES) == set(NUMERIC_FEATURES), "every numeric model input has a range"
    rows = Suite(TRAINING_SUITE)
    rows.add_expectation(_named(gxe.ExpectColumnValuesToBeInSet(column="label", value_set=classes), "label_known"))
    rows.add_expectation(_named(gxe.ExpectColumnDistinctValuesToContainSet(column="label", value_set=classes),
                                "every_class_present"))
    rows.add_expectation(_named(gxe.ExpectColumnMeanToBeBetween(
        column="is_regular", min_value=q.min_regular_share, max_value=q.max_regular_share), "regular_share"))
    nulls = " OR ".join(f"`{c}` IS NULL" for c in NUMERIC_FEATURES + REQUIRED_CATEGORICAL)
    rows.add_expectation(_named(gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=f"SELECT * FROM {{batch}} WHERE {nulls}",
        description="No nulls in model inputs (numeric features, domain, currency)"), "model_inputs_not_null"))
    ranges = " OR ".join(f"({p})" for p in input_problems().values())
    rows.add_expectation(_named(gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=f"SELECT * FROM {{batch}} WHERE {ranges}",
        description="Model inputs within their ranges (fraud.quality.suites.FEATURE_RANGES)"), "model_inputs_in_range"))
    counts = Suite(CLASSES_SUITE)
    counts.add_expectation(_named(gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=q.min_class_rows),
                                  "class_rows_minimum"))
    return rows, counts
