"""Drift (fraud.drift): PSI of a live window against a training reference, on simulated traffic put
through the stream's chain in batch: flagged when behaviour has changed, not for another seed of the
same traffic nor for other vocabulary (currencies, payment methods) the model's inputs do not see."""

import math
from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F

from fraud import drift
from fraud.schemas import NUMERIC_FEATURES

T0, T1 = datetime(2026, 12, 4, 10, tzinfo=timezone.utc), datetime(2026, 12, 4, 11, tzinfo=timezone.utc)
EVENTS = 4000


def test_psi_is_zero_for_equal_shares_grows_with_the_shift_and_survives_empty_bins():
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert drift.psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * math.log(1.2) - 0.1 * math.log(0.8))
    assert drift.psi([0.5, 0.5], [0.9, 0.1]) > drift.psi([0.5, 0.5], [0.6, 0.4]) > 0
    assert math.isfinite(drift.psi([0.0, 1.0], [0.5, 0.5])) and drift.psi([0.0, 1.0], [0.5, 0.5]) > drift.FLAG


@pytest.fixture(scope="module")
def traffic(spark, config, tmp_path_factory):
    """Silver of three runs: the reference's profile (two seeds) and another profile."""
    from fraud.parse import kafka_records
    from fraud.pipeline import silver_from_records
    from fraud_simulator.history import simulate_file

    tmp = tmp_path_factory.mktemp("drift")
    runs = {"reference": ("default", 11), "same_profile": ("default", 12), "other_vocabulary": ("eu_marketplace", 13),
            "other_behaviour": ("apac_super_app", 14)}
    out = {}
    for name, (profile, seed) in runs.items():
        path = simulate_file(config, tmp / f"{name}.jsonl", profile=profile, seed=seed, events=EVENTS,
                             test_id=f"drift-{name}")
        out[name] = silver_from_records(kafka_records(spark, config, path.read_text().splitlines()), config).cache()
    yield out
    for df in out.values():
        df.unpersist()


def scored(df, seed):
    """A fraud score for the rows: the mechanism under test does not depend on which model gave it."""
    return df.withColumn(drift.SCORE, F.rand(seed))


def test_drift_is_flagged_when_the_profile_changes_and_not_when_it_does_not(traffic):
    ref = drift.reference(traffic["reference"], scored(traffic["reference"], 1))
    assert set(ref) == {*NUMERIC_FEATURES, drift.SCORE}
    assert all(sum(r["shares"]) == pytest.approx(1) and len(r["shares"]) == len(r["edges"]) + 2 for r in ref.values())

    same = drift.measure(traffic["same_profile"], scored(traffic["same_profile"], 2), ref, "v1", T0, T1)
    print("\nPSI, same profile, another seed:", sorted(same.psi.items(), key=lambda kv: -kv[1])[:5])
    assert same.rows == traffic["same_profile"].count() > EVENTS * 0.9 and same.flagged == []

    # Other currencies, payment methods and item names, the same behaviour: the model's inputs are
    # built not to see that (amounts in US dollars, no vocabulary), so they do not drift.
    vocabulary = drift.measure(traffic["other_vocabulary"], scored(traffic["other_vocabulary"], 3), ref, "v1", T0, T1)
    print("PSI, eu_marketplace:", sorted(vocabulary.psi.items(), key=lambda kv: -kv[1])[:5])
    assert vocabulary.flagged == []
    assert max(vocabulary.psi.values()) < 0.1
    # Other behaviour (longer sessions, shorter gaps between an actor's transactions): a moderate shift
    # (PSI 0.1-0.2) in exactly those inputs, well above the same profile's noise, below the flag.
    behaviour = drift.measure(traffic["other_behaviour"], scored(traffic["other_behaviour"], 4), ref, "v1", T0, T1)
    print("PSI, apac_super_app:", sorted(behaviour.psi.items(), key=lambda kv: -kv[1])[:5])
    moderate = {c for c, v in behaviour.psi.items() if v >= 0.1}
    assert behaviour.flagged == [] and {"f_session_s", "v_secs_since_prev"} <= moderate
    # An upstream unit error: amounts sent in cents. Flagged, on the amount inputs only.
    cents = traffic["same_profile"].select(
        *[(F.col(c) + math.log(100)).alias(c) if c == "f_log_amount"
          else (F.col(c) * 100).alias(c) if c in ("v_amount_sum", "v_amount_max", "v_amount_mean", "f_max_item_price")
          else F.col(c) for c in traffic["same_profile"].columns])
    shifted = drift.measure(cents, scored(cents, 5), ref, "v1", T0, T1)
    print("PSI, amounts in cents:", sorted(shifted.psi.items(), key=lambda kv: -kv[1])[:5])
    assert {"f_log_amount", "v_amount_sum", "v_amount_max", "v_amount_mean"} <= set(shifted.flagged)
    assert drift.SCORE not in shifted.flagged and "v_count" not in shifted.flagged
    assert shifted.as_dict()["flagged"] == shifted.flagged

    # An empty window (the stream stopped) measures nothing and flags nothing.
    empty = traffic["reference"].limit(0)
    measured = drift.measure(empty, scored(empty, 1), ref, "v1", T0, T1)
    assert measured.rows == 0 and measured.flagged == [] and set(measured.psi.values()) == {None}
