"""The expectation suites, built in code: the event expectations on silver-shaped rows, the training set.

``Suite`` holds a name and GX expectations, each named (``meta["name"]``): the name is the
quality flag (or quarantine reason ``expectation:<name>``) and the row key in reports. ``fraud.quality.validator``
registers suites with a GX context; ``fraud.quality.checks`` turns their row-level
expectations into Spark columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column as GxColumn

from fraud.config import DOMAINS, Config
from fraud.features import NUMERIC_FEATURES
from fraud.reference import currencies

EVENT_SUITE = "event_expectations"
TRAINING_SUITE = "training_set"
CLASSES_SUITE = "training_classes"

# Structural limits of an e-commerce cart: beyond them a row is flagged (cart_size, cart_items_well_formed).
MAX_CART_ITEMS = 100
MAX_ITEM_QUANTITY = 1_000
COUNTRY_CODE = r"^[A-Z]{2}$"
IP_ADDRESS = r"^[0-9A-Fa-f:.]{3,45}$"


def _named(expectation, name: str):
    """Every expectation carries a stable name: the quarantine reason, the row key in reports."""
    expectation.meta = {**(expectation.meta or {}), "name": name}
    return expectation


def expectation_name(expectation) -> str:
    return (expectation.meta or {}).get("name") or expectation.expectation_type


def _domain_is(domain: str):
    return GxColumn("domain") == domain


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
        ((F.unix_micros("kafka_timestamp") - F.unix_micros("event_time")) / 1e6).alias("event_age_s"),
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
    """A suite's name and expectations; ``Validator`` registers it as a GX ExpectationSuite (GX
    only lets a suite collect expectations inside a data context)."""

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
    add = suite.add_expectation
    # Currencies and amounts: the currency table (fraud.reference) rather than a list of three.
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(currencies(q.currencies_file))),
               "currency_known"))
    add(_named(gxe.ExpectColumnValuesToBeBetween(column="amount_below_minor_unit", min_value=0, max_value=0),
               "amount_minor_units"))
    for domain in DOMAINS:
        add(_named(gxe.ExpectColumnValuesToBeBetween(column="amount_usd", max_value=q.max_amount_usd[domain],
                                                     row_condition=_domain_is(domain)), f"amount_range_{domain}"))
    # Clock skew smaller than the contract's limit (stream.max_future_skew_s) but more than expected.
    add(_named(gxe.ExpectColumnValuesToBeBetween(column="event_age_s", min_value=-float(q.max_clock_skew_s)),
               "event_time_skew"))
    add(_named(gxe.ExpectColumnValuesToMatchRegex(column="ip_address", regex=IP_ADDRESS), "ip_address_format"))
    # Enumerations per domain (quality.expected_values).
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="payment_method", value_set=list(expected.payment_method),
                                               row_condition=GxColumn("domain") != "fintech"), "payment_method_known"))
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="item_type", value_set=list(expected.item_type),
                                               row_condition=_domain_is("gaming")), "item_type_known"))
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="transfer_type", value_set=list(expected.transfer_type),
                                               row_condition=_domain_is("fintech")), "transfer_type_known"))
    for column in ("country_from", "country_to"):
        add(_named(gxe.ExpectColumnValuesToMatchRegex(column=column, regex=COUNTRY_CODE,
                                                      row_condition=_domain_is("fintech")), f"{column}_format"))
    # E-commerce: both addresses complete, ISO country codes; a cart of well-formed items.
    for side in ("shipping", "billing"):
        for part in ("street", "city", "zip"):
            add(_named(gxe.ExpectColumnValuesToNotBeNull(column=f"{side}_{part}", row_condition=_domain_is("ecommerce")),
                       f"{side}_{part}_not_null"))
        add(_named(gxe.ExpectColumnValuesToMatchRegex(column=f"{side}_country", regex=COUNTRY_CODE,
                                                      row_condition=_domain_is("ecommerce")), f"{side}_country_format"))
    add(_named(gxe.ExpectColumnValuesToBeBetween(column="cart_item_count", min_value=1, max_value=MAX_CART_ITEMS,
                                                 row_condition=_domain_is("ecommerce")), "cart_size"))
    add(_named(gxe.ExpectColumnValuesToBeBetween(column="cart_bad_items", min_value=0, max_value=0,
                                                 row_condition=_domain_is("ecommerce")), "cart_items_well_formed"))
    add(_named(gxe.ExpectColumnValuesToBeBetween(column="cart_unknown_categories", min_value=0, max_value=0,
                                                 row_condition=_domain_is("ecommerce")), "cart_categories_known"))
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
