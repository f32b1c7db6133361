"""Bad input, fuzzed with Hypothesis, through the stream's own parse, quality and velocity code
(real Spark, ANSI mode on): every record is either valid and lands once, kept verbatim, or is
quarantined with the reason its mutation calls for."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyspark.sql.types import StringType

from fraud.schemas import NUMERIC_FEATURES
from fraud.parse import kafka_records
from fraud.pipeline import batch_records, to_silver
from fraud.schemas import event_schema

from conftest import ROOT

KNOWN = {"transaction_id", "domain", "test_id", "timestamp", "actor_id", "sequence_position", "pattern", "is_fraud",
         "player_id", "game_id", "item_type", "item_name", "amount", "currency", "payment_method", "ip_address",
         "device_id", "session_length_sec", "user_id", "cart_items", "shipping_address", "billing_address",
         "device_fingerprint", "session_duration_sec", "account_from", "account_to", "transfer_type",
         "country_from", "country_to", "purpose"}
# Storable as they are: valid free text, however hostile to a naive consumer (U+2028 is not a C0 control).
HOSTILE = ["'; DROP TABLE alerts; --", "\" OR 1=1 --", "Robert'); DELETE FROM sink_progress;--", "%s %s %(x)s",
           "{}", "\\x00 \u2028", "😀 ünïcödé", "<script>alert(1)</script>", "$1; SELECT pg_sleep(10)"]
STRING_FIELDS = {d: [f.name for f in event_schema(d).fields if isinstance(f.dataType, StringType)]
                 for d in ("gaming", "fintech", "ecommerce")}
CONTROL = st.sampled_from([chr(c) for c in range(0x20)] + ["\x7f"])
FREE_TEXT = {"gaming": "item_name", "fintech": "purpose", "ecommerce": "device_fingerprint"}


@pytest.fixture(scope="module")
def base_events(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "events.jsonl"
    subprocess.run([sys.executable, "-m", "fraud_simulator", "--events", "60", "--seed", "5", "--output", str(path)],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return {d: next(e for e in events if e["domain"] == d) for d in FREE_TEXT}


# Extra fields keep any text but a NUL (``bad_chars:extra_fields``: no PostgreSQL text holds it).
no_nul_text = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=20)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | no_nul_text, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
extra_names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda n: n not in KNOWN)

mutation = st.one_of(
    st.tuples(st.just("valid"), st.dictionaries(extra_names, json_values, max_size=2), st.sampled_from(HOSTILE)),
    st.tuples(st.just("malformed_json"), st.floats(0.0, 0.99)),
    st.tuples(st.just("missing_field"), st.sampled_from(["actor_id", "amount", "transaction_id", "timestamp"])),
    # Strings Spark reads as numbers ("NaN", "Infinity") are out of range rather than badly typed.
    st.tuples(st.just("bad_type:amount"), st.one_of(
        st.text(max_size=8).filter(lambda t: not any(w in t.lower() for w in ("nan", "inf"))),
        st.booleans(), st.lists(st.integers(), max_size=2))),
    st.tuples(st.just("out_of_range:amount"), st.one_of(st.floats(max_value=0.0, allow_nan=False),
                                                        st.floats(min_value=1e9, allow_infinity=False),
                                                        st.floats(min_value=0.0, max_value=1e-300),  # subnormal
                                                        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400"]))),
    # Years Spark parses but no JVM timestamp holds (the velocity operator would overflow on them).
    st.tuples(st.just("bad_type:timestamp"), st.sampled_from(["+294247-01-01T00:00:00Z", "-290308-12-21T19:59:06Z",
                                                             "294000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
                                                             "2026-13-45T99:99:99Z", "2026-11-28T12:00:00"])),
    st.tuples(st.just("bad_chars"), st.integers(0, 20), CONTROL),
    st.tuples(st.just("too_long"), st.integers(0, 20), st.integers(257, 4000)),
    st.tuples(st.just("unknown_domain"), st.text(min_size=1, max_size=10).filter(lambda d: d not in FREE_TEXT)),
    st.tuples(st.just("oversize"), st.integers(70_000, 120_000)),
)


def mutate(event: dict, kind: tuple) -> tuple[bytes, str | None]:
    """The record's value and the reason it must be quarantined with (None: valid)."""
    name = kind[0]
    if name == "valid":
        _, extras, hostile = kind
        return json.dumps({**event, **extras, FREE_TEXT[event["domain"]]: hostile}).encode(), None
    if name == "malformed_json":
        text = json.dumps(event)
        return text[:int(len(text) * kind[1])].encode(), "malformed_json"
    if name == "missing_field":
        return json.dumps({k: v for k, v in event.items() if k != kind[1]}).encode(), f"missing_field:{kind[1]}"
    if name == "bad_type:amount":
        return json.dumps({**event, "amount": kind[1]}).encode(), name
    if name == "out_of_range:amount":
        if isinstance(kind[1], str):  # a JSON number token no float of Python's would print
            return json.dumps({**event, "amount": 1.5}).replace('"amount": 1.5', f'"amount": {kind[1]}').encode(), name
        return json.dumps({**event, "amount": kind[1]}).encode(), name
    if name == "bad_type:timestamp":
        return json.dumps({**event, "timestamp": kind[1]}).encode(), name
    if name in ("bad_chars", "too_long"):
        fields = STRING_FIELDS[event["domain"]]
        field = fields[kind[1] % len(fields)]
        text = "x" * kind[2] if name == "too_long" else f"ab{kind[2]}c"
        return json.dumps({**event, field: text}).encode(), f"{name}:{field}"
    if name == "unknown_domain":
        return json.dumps({**event, "domain": kind[1]}).encode(), name
    return json.dumps({**event, "padding": "x" * kind[1]}).encode(), "oversize"


# Few examples of many records each: an example's cost is mostly the fixed planning of one batch.
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases=st.lists(st.tuples(st.sampled_from(sorted(FREE_TEXT)), mutation), min_size=1, max_size=30))
def test_fuzzed_records_are_quarantined_with_a_reason_or_land_verbatim(spark, config, base_events, cases):
    events, values, expected = [], [], {}
    for offset, (domain, kind) in enumerate(cases):
        event = {**base_events[domain], "transaction_id": f"fz-{offset}-{base_events[domain]['transaction_id']}"}
        value, reason = mutate(event, kind)
        expected[offset] = (reason, event, kind)
        events.append(event)
        values.append(value)
    df = kafka_records(spark, config, events, values=values)  # each travels on its domain's topic
    records_df = batch_records(df, config)
    out = {r["offset"]: r for r in records_df.select(
        "offset", "reasons", "transaction_id", "extra_fields", "item_name", "purpose", "device_fingerprint").collect()}
    # Every expression on the way to scoring is total, and what reaches the model is finite.
    silver = records_df.transform(to_silver).toArrow()
    for name in NUMERIC_FEATURES:
        values_of = silver.column(name).to_numpy(zero_copy_only=False).astype(float)
        assert np.isfinite(values_of).all(), name

    assert sorted(out) == sorted(expected), "every record comes out once"
    for offset, (reason, event, kind) in expected.items():
        row = out[offset]
        if reason is None:
            assert row["reasons"] == [], (kind, row["reasons"])
            assert row["transaction_id"] == event["transaction_id"]
            assert row[FREE_TEXT[event["domain"]]] == kind[2], "hostile text stored verbatim"
            extras = row["extra_fields"] or {}
            assert set(extras) == set(kind[1]), "new fields are kept"
            assert all(extras[k] == v for k, v in kind[1].items() if isinstance(v, str)), "kept verbatim"
        else:
            assert reason in row["reasons"], (kind[0], row["reasons"])
