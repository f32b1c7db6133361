"""Typology rules beside the model: declarative conditions over a scored row, from a YAML file.

The packaged catalogue is ``fraud/reference/typologies.yaml`` (each rule cites the definition it
writes down: the CTR threshold, the FATF lists, ...); ``rules.file`` in the config names another.
A rule matches a silver row of its domain when every condition of its ``when`` holds; a missing
value never matches. Gold carries, per row, the rules that matched (``rule_hits``) and what raised
its alert (``raised_by``: ``model`` and ``rule:<name>`` for each matching rule not in shadow). A
rule in ``rules.shadow`` is evaluated and counted (``fraud.shadow``) but never alerts, as the
challenger is; one in ``rules.disabled`` is not evaluated.

Evaluated twice from the one definition, like the severity ladder: on the driver over Arrow
(``RuleBook.hits``, the stream) and as Spark expressions (``RuleBook.hits_column``, batch
scoring); ``tests/test_rules.py`` holds them equal.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from fraud.cli import UserError
from fraud.model_classes import FRAUD_CLASSES
from fraud.reference import reference_codes
from fraud.schemas import NUMERIC_FEATURES, SHARED_FEATURES

MODEL = "model"
RULE_PREFIX = "rule:"

# What a condition may read: silver's scalar columns (numbers compare with numbers, text with text).
NUMERIC_COLUMNS = tuple(dict.fromkeys((*NUMERIC_FEATURES, *SHARED_FEATURES, "amount", "amount_usd",
                                       "session_length_sec", "session_duration_sec")))
TEXT_COLUMNS = ("currency", "payment_method", "item_type", "transfer_type", "purpose", "country_from", "country_to",
                "ip_address", "shipping_country", "billing_country", "top_category")
_NUMERIC_OPS = (">=", ">", "<=", "<", "==", "!=")
_TEXT_OPS = ("==", "!=", "in", "not in")


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: float | str | tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    name: str
    domain: str
    alert_type: str  # the fraud class of the alert it raises
    description: str
    source: str
    when: tuple[Condition, ...]
    because: str  # the analyst's reason, a format string over the row's columns
    shadow: bool = False

    def reason(self, row: dict) -> str:
        """``because`` filled from ``row``; the description where a value it formats as a number is missing
        (a missing text shows as None)."""
        try:
            return self.because.format(**row)
        except (KeyError, TypeError, ValueError):
            return self.description


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]

    @property
    def alerting(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.shadow)

    def by_name(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)

    def hits(self, silver: pa.Table) -> list[list[str]]:
        """Per row of ``silver``, the names of the rules it matches, in catalogue order."""
        out: list[list[str]] = [[] for _ in range(silver.num_rows)]
        for rule in self.rules:
            for i in np.flatnonzero(_mask(rule, silver)):
                out[i].append(rule.name)
        return out

    @cached_property
    def _alerting_names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.alerting)

    def raised_by(self, model_alert: bool, hits: list[str]) -> list[str]:
        """What raised a row's alert (called per scored row: the alerting names are worked out once)."""
        return [MODEL] * model_alert + [RULE_PREFIX + name for name in hits if name in self._alerting_names]

    def hits_column(self):
        """``hits`` as a Spark column (array<string>) over a silver frame."""
        from pyspark.sql import functions as F

        if not self.rules:
            return F.array().cast("array<string>")
        matched = F.array(*[F.when(_spark_condition(rule), F.lit(rule.name)) for rule in self.rules])
        return F.filter(matched, lambda name: name.isNotNull())

    def raised_by_column(self, model_alert, hits):
        """``raised_by`` as a Spark column from the model's alert flag and ``hits_column``."""
        from pyspark.sql import functions as F

        alerting = [F.lit(r.name) for r in self.alerting]
        rules = F.transform(F.filter(hits, lambda name: name.isin(*alerting) if alerting else F.lit(False)),
                            lambda name: F.concat(F.lit(RULE_PREFIX), name))
        return F.concat(F.when(model_alert, F.array(F.lit(MODEL))).otherwise(F.array().cast("array<string>")), rules)


def _mask(rule: Rule, silver: pa.Table) -> np.ndarray:
    mask = pc.equal(silver.column("domain"), rule.domain)
    for c in rule.when:
        mask = pc.and_(mask, _arrow_condition(c, silver.column(c.column)))
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _arrow_condition(c: Condition, column):
    if c.op in ("in", "not in"):
        found = pc.is_in(column, value_set=pa.array(c.value, pa.string()))
        found = pc.if_else(pc.is_null(column), pa.scalar(None, pa.bool_()), found)  # missing never matches
        return found if c.op == "in" else pc.invert(found)
    compare = {">=": pc.greater_equal, ">": pc.greater, "<=": pc.less_equal, "<": pc.less, "==": pc.equal,
               "!=": pc.not_equal}[c.op]
    return compare(column, c.value)


def _spark_condition(rule: Rule):
    from pyspark.sql import functions as F

    condition = F.col("domain") == rule.domain
    for c in rule.when:
        column = F.col(c.column)
        if c.op in ("in", "not in"):
            found = column.isin(*c.value)
            term = found if c.op == "in" else ~found
        else:
            term = {">=": column >= c.value, ">": column > c.value, "<=": column <= c.value, "<": column < c.value,
                    "==": column == c.value, "!=": column != c.value}[c.op]
        condition = condition & term
    return F.coalesce(condition, F.lit(False))


# --- the catalogue -------------------------------------------------------------------------------

def rule_book(file: str | None = None, shadow: tuple[str, ...] = (), disabled: tuple[str, ...] = ()) -> RuleBook:
    """The rules of ``file`` (the packaged catalogue when None), those named in ``shadow`` shadowed and
    those in ``disabled`` left out. A file or a name that cannot be used raises ``UserError`` naming it."""
    return _rule_book(file, tuple(shadow), tuple(disabled))


@lru_cache(maxsize=8)
def _rule_book(file: str | None, shadow: tuple[str, ...], disabled: tuple[str, ...]) -> RuleBook:
    source = Path(file) if file else resources.files("fraud.reference") / "typologies.yaml"
    try:
        raw = yaml.safe_load(source.read_text())
    except OSError as err:
        raise UserError(f"rules file {source}: {err.strerror or err}") from None
    except yaml.YAMLError:
        raise UserError(f"rules file {source}: not valid YAML") from None
    if not isinstance(raw, dict) or set(raw) != {"rules"} or not isinstance(raw["rules"], list):
        raise UserError(f"rules file {source}: expected one key, rules, holding a list")
    rules = [_rule(item, f"rules file {source}, rule {i + 1}") for i, item in enumerate(raw["rules"])]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise UserError(f"rules file {source}: a rule name appears twice")
    for key, listed in (("rules.shadow", shadow), ("rules.disabled", disabled)):
        unknown = sorted(set(listed) - set(names))
        if unknown:
            raise UserError(f"{key}: no rule named {unknown[0]!r} in {source}")
    return RuleBook(tuple(Rule(**{**r.__dict__, "shadow": r.name in shadow}) for r in rules if r.name not in disabled))


_RULE_KEYS = {"name", "domain", "alert_type", "description", "source", "when", "because"}


def _rule(item, where: str) -> Rule:
    if not isinstance(item, dict) or set(item) != _RULE_KEYS:
        raise UserError(f"{where}: needs exactly the keys {', '.join(sorted(_RULE_KEYS))}")
    texts = {k: item[k] for k in _RULE_KEYS - {"when"}}
    bad = sorted(k for k, v in texts.items() if not isinstance(v, str) or not v.strip())
    if bad:
        raise UserError(f"{where}: {bad[0]} must be a non-empty text")
    where = f"{where} ({item['name']})"
    if item["domain"] not in ("gaming", "fintech", "ecommerce"):
        raise UserError(f"{where}: domain must be gaming, fintech or ecommerce")
    if item["alert_type"] not in FRAUD_CLASSES:
        raise UserError(f"{where}: alert_type must be a fraud class ({', '.join(FRAUD_CLASSES)})")
    if not isinstance(item["when"], dict) or not item["when"]:
        raise UserError(f"{where}: when must map columns to conditions")
    when = tuple(_condition(column, op, value, where)
                 for column, ops in item["when"].items()
                 for op, value in (ops.items() if isinstance(ops, dict) else [(None, None)]))
    rule = Rule(**texts, when=when)
    _check_because(rule, where)
    return rule


def _condition(column, op, value, where: str) -> Condition:
    if column in NUMERIC_COLUMNS:
        if op not in _NUMERIC_OPS or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: {column}: a number column takes {{op: number}} with op one of"
                            f" {', '.join(_NUMERIC_OPS)}")
        return Condition(column, op, float(value))
    if column in TEXT_COLUMNS:
        if op in ("==", "!=") and isinstance(value, str):
            return Condition(column, op, value)
        if op in ("in", "not in"):
            values = _reference(value, where) if isinstance(value, str) and value.startswith("@") else value
            if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
                return Condition(column, op, tuple(values))
        raise UserError(f"{where}: {column}: a text column takes {{op: value}} with op one of {', '.join(_TEXT_OPS)}"
                        " (in / not in: a list of texts or @reference)")
    raise UserError(f"{where}: {column!r} is not a column a rule can read (docs/model.md#typology-rules)")


def _reference(value: str, where: str) -> list[str]:
    try:
        return reference_codes(value[1:])
    except UserError as err:
        raise UserError(f"{where}: {err}") from None


def _check_because(rule: Rule, where: str) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(rule.because) if name is not None}
    unknown = sorted(fields - set(NUMERIC_COLUMNS) - set(TEXT_COLUMNS))
    if unknown:
        raise UserError(f"{where}: because names {unknown[0]!r}, not a column a rule can read")
    sample = {**{c: 1.0 for c in NUMERIC_COLUMNS}, **{c: "XX" for c in TEXT_COLUMNS}}
    try:
        rule.because.format(**sample)
    except (ValueError, IndexError) as err:
        raise UserError(f"{where}: because: {err}") from None
