"""The expectation suites, built in code: the event contract on silver-shaped rows, the training set.

``Suite`` holds a name and GX expectations, each named (``meta["name"]``): the name is the
quarantine reason (``expectation:<name>``) and the row key in reports. ``fraud.quality.validator``
registers suites with a GX context; ``fraud.quality.checks`` turns their row-level
expectations into Spark columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import AndCondition, Column as GxColumn

from fraud.config import DOMAINS, Config
from fraud.features import NUMERIC_FEATURES

EVENT_SUITE = "event_contract"
TRAINING_SUITE = "training_set"
CLASSES_SUITE = "training_classes"

# Amount bounds per domain and currency (major units). A currency missing here fails
# ``currency_allowed``. Wider than the simulator's ranges: legitimate whales, big wires.
AMOUNT_LIMITS = {
    "gaming": {"USD": (0.01, 2_000.0), "EUR": (0.01, 2_000.0), "GBP": (0.01, 2_000.0)},
    "ecommerce": {"USD": (0.01, 50_000.0), "EUR": (0.01, 50_000.0), "GBP": (0.01, 50_000.0)},
    "fintech": {"USD": (0.01, 5_000_000.0), "EUR": (0.01, 5_000_000.0), "GBP": (0.01, 5_000_000.0)},
}
CURRENCIES = sorted({c for limits in AMOUNT_LIMITS.values() for c in limits})
PAYMENT_METHODS = ["apple_pay", "bank_transfer", "credit_card", "debit_card", "gift_card", "google_pay", "paypal"]
ITEM_TYPES = ["battle_pass", "booster", "cosmetic", "currency", "lootbox", "skin", "weapon"]
CART_CATEGORIES = ["beauty", "books", "clothing", "electronics", "grocery", "home", "sports", "toys"]
TRANSFER_TYPES = ["ach", "sepa", "swift", "wire"]
MAX_CART_ITEMS = 100
MAX_ITEM_QUANTITY = 1_000
COUNTRY_CODE = r"^[A-Z]{2}$"
IP_ADDRESS = r"^[0-9A-Fa-f:.]{3,45}$"
KEY_COLUMNS = ["transaction_id", "domain", "test_id", "actor_id", "event_time", "sequence_position", "pattern",
               "is_fraud", "amount", "currency", "ip_address"]


def _named(expectation, name: str):
    """Every expectation carries a stable name: the quarantine reason, the row key in reports."""
    expectation.meta = {**(expectation.meta or {}), "name": name}
    return expectation


def expectation_name(expectation) -> str:
    return (expectation.meta or {}).get("name") or expectation.expectation_type


def _domain_is(domain: str):
    return GxColumn("domain") == domain


def with_quality_columns(silver_df: DataFrame) -> DataFrame:
    """Derived columns the event suite checks (GX has no expectations over arrays or two timestamps)."""
    items = F.col("cart_items")
    bad_item = lambda i: (i["product_id"].isNull() | ~i["category"].isin(*CART_CATEGORIES)  # noqa: E731
                          | F.isnan(i["price"]) | (i["price"] <= 0) | (i["quantity"] < 1)
                          | (i["quantity"] > MAX_ITEM_QUANTITY))
    return silver_df.select(
        "*",
        ((F.unix_micros("kafka_timestamp") - F.unix_micros("event_time")) / 1e6).alias("event_age_s"),
        F.when(items.isNotNull(), F.size(items)).alias("cart_item_count"),
        F.when(items.isNotNull(), F.size(F.filter(items, lambda i: F.coalesce(bad_item(i), F.lit(True)))))
        .alias("cart_bad_items"),
    )


@dataclass(frozen=True)
class Suite:
    """A suite's name and expectations; ``Validator`` registers it as a GX ExpectationSuite (GX
    only lets a suite collect expectations inside a data context)."""

    name: str
    expectations: list = field(default_factory=list)

    def add_expectation(self, expectation) -> None:
        self.expectations.append(expectation)


def event_suite(config: Config) -> Suite:
    """The event contract (DESIGN §4) as expectations on silver-shaped rows."""
    s = config.stream
    suite = Suite(EVENT_SUITE)
    add = suite.add_expectation
    for column in KEY_COLUMNS:
        add(_named(gxe.ExpectColumnValuesToNotBeNull(column=column), f"{column}_not_null"))
    for column, type_ in (("amount", "DoubleType"), ("sequence_position", "IntegerType"),
                          ("is_fraud", "BooleanType"), ("event_time", "TimestampType")):
        add(_named(gxe.ExpectColumnValuesToBeOfType(column=column, type_=type_), f"{column}_type"))
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="domain", value_set=list(DOMAINS)), "domain_allowed"))
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=CURRENCIES), "currency_allowed"))
    for domain, limits in AMOUNT_LIMITS.items():
        for currency, (low, high) in limits.items():
            add(_named(gxe.ExpectColumnValuesToBeBetween(
                column="amount", min_value=low, max_value=high,
                row_condition=AndCondition(conditions=[_domain_is(domain), GxColumn("currency") == currency])),
                f"amount_range_{domain}_{currency.lower()}"))
    add(_named(gxe.ExpectColumnValuesToBeBetween(column="sequence_position", min_value=0), "sequence_position_range"))
    # Event time against the Kafka timestamp: not older than the stream accepts, not in the future.
    add(_named(gxe.ExpectColumnValuesToBeBetween(
        column="event_age_s", min_value=-float(s.max_future_skew_s), max_value=s.max_event_age_days * 86400.0),
        "event_time_sane"))
    add(_named(gxe.ExpectColumnValuesToMatchRegex(column="ip_address", regex=IP_ADDRESS), "ip_address_format"))
    # Enumerations per domain.
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="payment_method", value_set=PAYMENT_METHODS,
                                               row_condition=GxColumn("domain") != "fintech"), "payment_method_allowed"))
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="item_type", value_set=ITEM_TYPES,
                                               row_condition=_domain_is("gaming")), "item_type_allowed"))
    add(_named(gxe.ExpectColumnValuesToBeInSet(column="transfer_type", value_set=TRANSFER_TYPES,
                                               row_condition=_domain_is("fintech")), "transfer_type_allowed"))
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
    return suite


# Feature ranges of the model inputs (fraud.features): flags are 0/1, -1 marks "absent".
_FLAGS = ["f_is_vpn_ip", "f_ship_ne_bill", "f_is_cross_border", "f_to_high_risk_country", "f_near_ctr_threshold"]
FEATURE_RANGES = {
    **{flag: (0.0, 1.0) for flag in _FLAGS},
    "f_log_amount": (0.0, 25.0), "f_session_s": (-1.0, None), "f_n_items": (0.0, None),
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
