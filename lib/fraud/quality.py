"""Data quality with Great Expectations 1.x: the event suite on the stream, the training gate.

Two suites, both plain GX ``ExpectationSuite``s built in code:

- ``event_contract`` on silver-shaped rows (typed, flattened events plus a few derived
  check columns, ``with_quality_columns``): non-null keys, column types, amount ranges per
  domain and currency, event-time sanity, allowed domains and enumerations, address and
  cart structure for e-commerce.
- ``training_set`` on labelled silver (plus ``training_classes`` on its class counts):
  every class present with enough rows, regular share within bounds, model inputs
  non-null and within their ranges.

In the stream, validation has two speeds, because a GX checkpoint on the Spark engine
runs a Spark job or more per expectation (measured 10-15 s for this suite on a
2,000-row batch on 2 cores, see ``benchmarks/quality_overhead.py``):

- every batch: each row-level expectation of the suite (``column_values`` kinds with
  their ``row_condition``) is turned into the Spark ``Column`` of its failing rows
  (``failing_rows``; a test checks it counts exactly what GX counts). Rows failing one
  get the reason ``expectation:<name>`` and go to quarantine instead of silver; per
  expectation counts and a few examples go to PostgreSQL ``quality_results``
  (engine ``spark``). All of it is JVM work: no per-row Python.
- every ``quality.gx_every_n_batches``-th batch (optionally on a sample): the GX
  checkpoint itself on the Spark data source, the batch passed at run time, in a
  background thread so the stream does not wait for it; its result is stored too
  (engine ``great_expectations``) and rendered as data docs.

A failing suite only reports unless ``quality.fail_stream_on_failure``.

CLI: ``python -m fraud.quality docs --input events.jsonl`` validates a simulator file
against the event suite and builds the data docs.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import reduce

from psycopg.types.json import Jsonb
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fraud.cli import UserError
from fraud.config import DOMAINS, Config
from fraud.db import RetryPolicy
from fraud.features import NUMERIC_FEATURES
from fraud.parse import parse_records, reason_codes

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage statistics leave the machine

import great_expectations as gx  # noqa: E402  (after the analytics switch)
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.expectations.row_conditions import (  # noqa: E402
    AndCondition, Column as GxColumn, ComparisonCondition, NullityCondition)

log = logging.getLogger(__name__)

EVENT_SUITE = "event_contract"
TRAINING_SUITE = "training_set"
CLASSES_SUITE = "training_classes"
REASON_PREFIX = "expectation:"
EXAMPLES_PER_EXPECTATION = 3

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


class QualityGateFailed(UserError):
    """A data set failed its suite where that must stop the work (training; the stream when configured)."""


def _named(expectation, name: str):
    """Every expectation carries a stable name: the quarantine reason, the row key in reports."""
    expectation.meta = {**(expectation.meta or {}), "name": name}
    return expectation


def expectation_name(expectation) -> str:
    return (expectation.meta or {}).get("name") or expectation.expectation_type


def _domain_is(domain: str):
    return GxColumn("domain") == domain


# --- the suites -----------------------------------------------------------------------

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


def _input_problems() -> dict[str, str]:
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
    ranges = " OR ".join(f"({p})" for p in _input_problems().values())
    rows.add_expectation(_named(gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=f"SELECT * FROM {{batch}} WHERE {ranges}",
        description="Model inputs within their ranges (fraud.quality.FEATURE_RANGES)"), "model_inputs_in_range"))
    counts = Suite(CLASSES_SUITE)
    counts.add_expectation(_named(gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=q.min_class_rows),
                                  "class_rows_minimum"))
    return rows, counts


# --- GX expectations as Spark columns --------------------------------------------------

def _condition(condition) -> Column:
    """A GX row condition (the Condition objects of GX 1.x) as a Spark column."""
    if isinstance(condition, AndCondition):
        return reduce(lambda a, b: a & b, [_condition(c) for c in condition.conditions])
    if isinstance(condition, NullityCondition):
        column = F.col(condition.column.name)
        return column.isNull() if condition.is_null else column.isNotNull()
    if isinstance(condition, ComparisonCondition):
        column, value, op = F.col(condition.column.name), condition.parameter, str(condition.operator)
        ops = {"==": column == value, "!=": column != value, "<": column < value, "<=": column <= value,
               ">": column > value, ">=": column >= value}
        if op in ops:
            return ops[op]
        return column.isin(*value) if op == "IN" else ~column.isin(*value)
    raise TypeError(f"row condition {condition!r} has no Spark translation")


def failing_rows(expectation) -> Column | None:
    """The rows a row-level expectation marks unexpected, as a boolean Spark column (never null).

    Same semantics as GX: ``row_condition`` selects the rows checked; except for the
    not-null kind, a null value is not unexpected. None for expectations that are not
    row-level (types, aggregates): GX alone checks those.
    """
    column = F.col(expectation.column) if hasattr(expectation, "column") else None
    if isinstance(expectation, gxe.ExpectColumnValuesToNotBeNull):
        unexpected = column.isNull()
    elif isinstance(expectation, gxe.ExpectColumnValuesToBeBetween):
        ok = F.lit(True)
        if expectation.min_value is not None:
            ok = ok & ((column > expectation.min_value) if expectation.strict_min else (column >= expectation.min_value))
        if expectation.max_value is not None:
            ok = ok & ((column < expectation.max_value) if expectation.strict_max else (column <= expectation.max_value))
        unexpected = column.isNotNull() & ~ok
    elif isinstance(expectation, gxe.ExpectColumnValuesToBeInSet):
        unexpected = column.isNotNull() & ~column.isin(*expectation.value_set)
    elif isinstance(expectation, gxe.ExpectColumnValuesToMatchRegex):
        unexpected = column.isNotNull() & ~column.rlike(expectation.regex)
    else:
        return None
    if expectation.row_condition is not None:
        unexpected = _condition(expectation.row_condition) & unexpected
    return F.coalesce(unexpected, F.lit(False))


def row_checks(suite: Suite) -> dict[str, tuple[object, Column]]:
    """name -> (expectation, failing-rows column) for the suite's row-level expectations."""
    checks = {}
    for expectation in suite.expectations:
        unexpected = failing_rows(expectation)
        if unexpected is not None:
            checks[expectation_name(expectation)] = (expectation, unexpected)
    return checks


# --- GX context ---------------------------------------------------------------------------

class Validator:
    """One ephemeral GX context: a Spark data source with one dataframe asset per suite, a
    validation definition and a checkpoint each; the frame is passed at run time."""

    def __init__(self, suites: list[Suite], docs_dir: str | None = None):
        warnings.filterwarnings("ignore", module="great_expectations")
        self.context = gx.get_context(mode="ephemeral")
        self.docs_dir = docs_dir
        actions = []
        if docs_dir:
            self.context.add_data_docs_site(site_name="fraud", site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["fraud"]))
        # We persist (and release) the frames ourselves, per batch.
        source = self.context.data_sources.add_spark("fraud", persist=False)
        self.checkpoints = {}
        for spec in suites:
            suite = self.context.suites.add(gx.ExpectationSuite(name=spec.name))
            for expectation in spec.expectations:
                suite.add_expectation(expectation.copy(deep=True))
            batch = source.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("batch")
            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
            self.checkpoints[suite.name] = self.context.checkpoints.add(gx.Checkpoint(
                name=suite.name, validation_definitions=[definition], actions=actions,
                result_format={"result_format": "BASIC", "partial_unexpected_count": EXAMPLES_PER_EXPECTATION}))

    def run(self, suite_name: str, df: DataFrame, run_name: str) -> dict:
        """Validate ``df`` against one suite; a plain summary (see ``summarize``)."""
        result = self.checkpoints[suite_name].run(batch_parameters={"dataframe": df},
                                                  run_id=gx.RunIdentifier(run_name=run_name))
        (validation,) = result.run_results.values()
        return summarize(validation)


def summarize(validation) -> dict:
    """A GX validation result as {success, evaluated, failed: [{expectation, column, unexpected, examples, ...}]}."""
    failed = []
    for r in validation.results:
        if r.success:
            continue
        config = r.expectation_config
        result = r.result or {}
        failed.append({
            "expectation": (config.meta or {}).get("name") or config.type, "type": config.type,
            "column": config.kwargs.get("column"), "unexpected": result.get("unexpected_count"),
            "observed": _jsonable(result.get("observed_value")),
            "examples": [{"value": _jsonable(v)} for v in (result.get("partial_unexpected_list") or [])],
            "error": (r.exception_info or {}).get("exception_message") if (r.exception_info or {}).get(
                "raised_exception") else None,
        })
    return {"success": bool(validation.success), "evaluated": len(validation.results), "failed": failed}


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


# --- the stream ---------------------------------------------------------------------------

def contract_valid(reasons: Column) -> Column:
    """No parse/contract reason (expectation reasons aside): the rows the event suite applies to."""
    return F.forall(reasons, lambda r: r.startswith(REASON_PREFIX))


def silver_shaped(records_df: DataFrame, config: Config) -> DataFrame:
    """Kafka-shaped records -> typed, flattened event columns plus the suite's derived columns."""
    return with_quality_columns(parse_records(records_df, config))


@dataclass
class StreamQuality:
    """The stream's side: routing (every batch), results to PostgreSQL, the GX checkpoint every N batches."""

    config: Config
    pool: object  # psycopg_pool.ConnectionPool
    _validator: Validator | None = field(default=None, init=False)
    _gx_running: Future | None = field(default=None, init=False)

    def __post_init__(self):
        self.suite = event_suite(self.config)
        self.checks = row_checks(self.suite)
        self.retry = RetryPolicy.of(self.config)
        self._gx_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-checkpoint")

    @property
    def enabled(self) -> bool:
        return self.config.quality.enabled

    def with_expectation_reasons(self, records_df: DataFrame) -> DataFrame:
        """A record frame (``fraud.parse.parse_records``) with ``expectation:<name>`` as the reasons of
        contract-valid rows failing row-level expectations. Lazy and JVM only: one projection."""
        if not self.enabled:
            return records_df
        return with_quality_columns(records_df).select(
            *[self._reasons() if c == "reasons" else c for c in records_df.columns])

    def _reasons(self) -> Column:
        failed = reason_codes([F.when(unexpected, F.lit(REASON_PREFIX + name))
                               for name, (_, unexpected) in self.checks.items()])
        return F.when(F.size("reasons") == 0, failed).otherwise(F.col("reasons")).alias("reasons")

    def after_batch(self, query_id: str, batch_id: int, batch_df: DataFrame,
                    rows_by_reasons: dict[tuple[str, ...], int]) -> dict | None:
        """Store this batch's results and start the GX checkpoint when this batch is due.

        ``batch_df`` is the materialized record frame after ``with_expectation_reasons``;
        ``rows_by_reasons`` counts its rows per distinct reasons list (the writer's one counting
        job computes it). The GX checkpoint runs on a copy of its sample in a background thread
        (seconds of Spark jobs per run: on the batch's path it stalled the stream, the p99
        detection latency with it), unless ``quality.fail_stream_on_failure``: then it runs here
        and a failure raises ``QualityGateFailed``, which fails the batch.
        """
        if not self.enabled:
            return None
        q = self.config.quality
        summary = self.summarize_failures(batch_df, rows_by_reasons)
        self._store(query_id, batch_id, "spark", summary)
        if q.gx_every_n_batches > 0 and batch_id % q.gx_every_n_batches == 0:
            if q.fail_stream_on_failure:
                summary["gx_success"] = self._checkpoint(query_id, batch_id, self._sample(batch_df))
            elif self._gx_running is not None and not self._gx_running.done():
                log.warning("batch %d: the previous GX checkpoint is still running; this one is skipped", batch_id)
            else:
                self._gx_running = self._gx_thread.submit(self._checkpoint, query_id, batch_id,
                                                          self._sample(batch_df))
        if q.fail_stream_on_failure and (summary["failed"] or not summary.get("gx_success", True)):
            raise QualityGateFailed(f"batch {batch_id} failed suite {EVENT_SUITE}: " + describe(summary))
        return summary

    def _sample(self, batch_df: DataFrame) -> DataFrame:
        """The rows the checkpoint validates, cached now (one small job): the batch's own rows are
        freed when the batch ends, before a background checkpoint reads them."""
        q = self.config.quality
        view_df = with_quality_columns(batch_df.filter(contract_valid(F.col("reasons"))))
        sample_df = view_df.limit(q.gx_sample_rows) if q.gx_sample_rows > 0 else view_df
        sample_df = sample_df.drop("cart_items", "extra_fields", "key", "value").persist()
        sample_df.count()
        return sample_df

    def _checkpoint(self, query_id: str, batch_id: int, sample_df: DataFrame) -> bool:
        """Run the GX checkpoint on ``sample_df`` (then freed) and store its result; True if it passed."""
        try:
            gx_summary = self.validator().run(EVENT_SUITE, sample_df, f"{query_id}:{batch_id}")
            gx_summary["rows"] = sample_df.count()
        except Exception:
            log.exception("GX checkpoint of batch %d failed to run", batch_id)
            raise
        finally:
            sample_df.unpersist()
        gx_summary["rows_failed"] = None
        self._store(query_id, batch_id, "great_expectations", gx_summary)
        return gx_summary["success"]

    def drain(self, timeout_s: float = 600) -> BaseException | None:
        """Wait for a GX checkpoint still running (the stream calls it before it stops; tests too);
        the exception it failed with (already logged), if any."""
        if self._gx_running is None:
            return None
        return self._gx_running.exception(timeout=timeout_s)

    def summarize_failures(self, batch_df: DataFrame, rows_by_reasons: dict[tuple[str, ...], int]) -> dict:
        """Rows checked (the contract-valid ones), rows failing an expectation, the count per expectation;
        examples from the failing rows only, so a clean batch costs no Spark job here."""
        checked = {reasons: n for reasons, n in rows_by_reasons.items()
                   if all(r.startswith(REASON_PREFIX) for r in reasons)}
        counts = Counter()
        for reasons, n in checked.items():
            for reason in reasons:
                counts[reason.removeprefix(REASON_PREFIX)] += n
        examples = self._examples(batch_df) if counts else {}
        failures = [{"expectation": name, "type": expectation.expectation_type, "column": expectation.column,
                     "unexpected": counts[name], "examples": examples.get(name, [])}
                    for name, (expectation, _) in self.checks.items() if name in counts]
        return {"success": not failures, "evaluated": len(self.checks), "failed": failures,
                "rows": sum(checked.values()), "rows_failed": sum(n for reasons, n in checked.items() if reasons)}

    def _examples(self, batch_df: DataFrame) -> dict[str, list[dict]]:
        """Up to EXAMPLES_PER_EXPECTATION (transaction id, offending value) per failed expectation,
        from a bounded number of failing rows."""
        failed = F.filter("reasons", lambda r: r.startswith(REASON_PREFIX))
        failing_df = with_quality_columns(batch_df.filter(contract_valid(F.col("reasons")) & (F.size(failed) > 0)))
        columns = sorted({expectation.column for expectation, _ in self.checks.values()})
        rows = (failing_df.select(failed.alias("_failed"), "transaction_id",
                                  *[F.col(c).cast("string").alias(c) for c in columns])
                .limit(EXAMPLES_PER_EXPECTATION * len(self.checks)).collect())
        examples: dict[str, list[dict]] = {}
        for row in rows:
            for reason in row["_failed"]:
                name = reason.removeprefix(REASON_PREFIX)
                found = examples.setdefault(name, [])
                if len(found) < EXAMPLES_PER_EXPECTATION:
                    found.append({"transaction_id": row["transaction_id"], "value": row[self.checks[name][0].column]})
        return examples

    def validator(self) -> Validator:
        if self._validator is None:
            self._validator = Validator([event_suite(self.config)], self.config.quality.data_docs_dir)
        return self._validator

    def _store(self, query_id: str, batch_id: int, engine: str, summary: dict) -> None:
        self.retry.run(
            self.pool, lambda conn: store_result(conn, run_id=query_id, batch_id=batch_id, suite=EVENT_SUITE,
                                                 engine=engine, summary=summary),
            f"{engine} quality result of batch {batch_id}")


def store_result(conn, *, run_id: str, batch_id: int, suite: str, engine: str, summary: dict) -> None:
    """Upsert one validation's row (a replayed batch overwrites its own row)."""
    conn.execute(
        "INSERT INTO quality_results (run_id, batch_id, suite, engine, validated_at, success, rows_checked,"
        " rows_failed, expectations, failed_expectations, failures)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (run_id, batch_id, suite, engine) DO UPDATE SET validated_at = EXCLUDED.validated_at,"
        " success = EXCLUDED.success, rows_checked = EXCLUDED.rows_checked, rows_failed = EXCLUDED.rows_failed,"
        " expectations = EXCLUDED.expectations, failed_expectations = EXCLUDED.failed_expectations,"
        " failures = EXCLUDED.failures",
        (run_id, batch_id, suite, engine, datetime.now(timezone.utc), summary["success"], summary.get("rows"),
         summary.get("rows_failed"), summary["evaluated"], len(summary["failed"]), Jsonb(summary["failed"])),
    )


def describe(summary: dict, limit: int = 8) -> str:
    """One line: what failed, with counts and an example each."""
    parts = []
    for f in summary["failed"][:limit]:
        what = f["expectation"]
        if f.get("unexpected") is not None:
            what += f" ({f['unexpected']} rows"
            if f.get("examples"):
                what += ", e.g. " + ", ".join(str(e.get("value")) for e in f["examples"][:EXAMPLES_PER_EXPECTATION])
            what += ")"
        elif f.get("observed") is not None:
            what += f" (observed {f['observed']!r})"
        parts.append(what)
    more = len(summary["failed"]) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --- training --------------------------------------------------------------------------

def gate_training_set(labelled_df: DataFrame, config: Config, classes: list[str]) -> dict:
    """Validate labelled training rows (column ``label``); raise ``QualityGateFailed`` with a
    one-line report when the set fails either suite. Returns the combined summary."""
    rows_suite, counts_suite = training_suites(config, classes)
    validator = Validator([rows_suite, counts_suite], config.quality.data_docs_dir)
    inputs = ["label", *NUMERIC_FEATURES, *REQUIRED_CATEGORICAL]
    rows_df = labelled_df.select(*inputs, (F.col("label") == "regular").cast("double").alias("is_regular")).persist()
    try:
        total = rows_df.count()
        counts_df = rows_df.groupBy("label").agg(F.count(F.lit(1)).alias("rows"))
        run_name = f"training-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
        rows_result = validator.run(TRAINING_SUITE, rows_df, run_name)
        counts_result = validator.run(CLASSES_SUITE, counts_df, run_name)
        summary = {"success": rows_result["success"] and counts_result["success"],
                   "evaluated": rows_result["evaluated"] + counts_result["evaluated"],
                   "failed": rows_result["failed"] + counts_result["failed"], "rows": total}
        if not summary["success"]:
            _name_input_columns(rows_df, summary["failed"])
    finally:
        rows_df.unpersist()
    if not summary["success"]:
        docs = f" (data docs: {config.quality.data_docs_dir}/index.html)" if config.quality.data_docs_dir else ""
        raise QualityGateFailed(f"training set failed data quality, {len(summary['failed'])} of "
                                f"{summary['evaluated']} expectations: {describe(summary)}{docs}")
    return summary


def _name_input_columns(rows_df: DataFrame, failed: list[dict]) -> None:
    """For the SQL expectations over all inputs, which columns are at fault (one aggregation)."""
    wanted = {f["expectation"] for f in failed} & {"model_inputs_not_null", "model_inputs_in_range"}
    if not wanted:
        return
    problems = _input_problems()
    row = rows_df.agg(*[F.sum(F.expr(f"CASE WHEN {p} THEN 1 ELSE 0 END")).alias(c) for c, p in problems.items()]
                      ).first()
    bad = {c: row[c] for c in problems if row[c]}
    for f in failed:
        if f["expectation"] in wanted:
            f["unexpected"] = f.get("observed")
            f["examples"] = [{"value": f"{c}: {n} rows"} for c, n in sorted(bad.items(), key=lambda kv: -kv[1])]
            f["observed"] = None


# --- CLI ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    from fraud.cli import ArgumentParser
    from fraud.config import load_config

    parser = ArgumentParser(prog="python -m fraud.quality",
                            description="Validate a simulator JSON-lines file against the event suite with "
                                        "Great Expectations and build the data docs (quality.data_docs_dir).")
    parser.add_argument("command", choices=["docs"])
    parser.add_argument("--input", required=True, help="JSON lines, e.g. from `python -m fraud.simulate --output`")
    parser.add_argument("--config", default="conf/local.yaml", help="config file (default: %(default)s)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if not os.path.exists(args.input):
        raise UserError(f"no such file: {args.input}")

    from fraud.spark import build_session

    spark = build_session(config, app_name="fraud-quality")
    spark.sparkContext.setLogLevel("WARN")
    view_df = silver_shaped(records_from_jsonl(spark, config, args.input), config)
    validator = Validator([event_suite(config)], config.quality.data_docs_dir)
    summary = validator.run(EVENT_SUITE, view_df.drop("cart_items", "extra_fields").persist(), "cli")
    print(f"{EVENT_SUITE}: {'passed' if summary['success'] else 'FAILED: ' + describe(summary)}")
    if config.quality.data_docs_dir:
        print(f"data docs: {config.quality.data_docs_dir}/index.html")
    return 0 if summary["success"] else 1


def records_from_jsonl(spark, config: Config, path: str) -> DataFrame:
    """Simulator JSON lines as Kafka-shaped records (the topic from the event's domain, Kafka time = now)."""
    lines = spark.read.text(path)
    domain = F.get_json_object("value", "$.domain")
    topic = reduce(lambda acc, d: F.when(domain == d, F.lit(config.kafka.topics[d])).otherwise(acc), DOMAINS,
                   F.lit("unknown-topic"))
    return lines.select(
        F.get_json_object("value", "$.actor_id").cast("binary").alias("key"), F.col("value").cast("binary").alias("value"),
        topic.alias("topic"), F.lit(0).alias("partition"), F.monotonically_increasing_id().alias("offset"),
        F.greatest(F.current_timestamp(), F.try_to_timestamp(F.get_json_object("value", "$.timestamp")))
        .alias("timestamp"))


if __name__ == "__main__":
    from fraud.cli import run

    run(main)
