"""Drift (fraud.drift): PSI of a live window against a training reference, on simulated traffic put
through the stream's chain in batch: flagged when the profile has changed, not when it has not."""

import math
from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F

from fraud import drift
from fraud.features import NUMERIC_FEATURES

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
    from fraud.simulate.history import simulate_file

    tmp = tmp_path_factory.mktemp("drift")
    runs = {"reference": ("default", 11), "same_profile": ("default", 12), "other_profile": ("eu_marketplace", 13)}
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

    other = drift.measure(traffic["other_profile"], scored(traffic["other_profile"], 3), ref, "v1", T0, T1)
    print("PSI, eu_marketplace:", sorted(other.psi.items(), key=lambda kv: -kv[1])[:5])
    assert other.flagged and drift.SCORE not in other.flagged  # the scores were drawn alike
    assert other.as_dict()["flagged"] == other.flagged


def test_an_empty_window_measures_nothing_and_flags_nothing(traffic):
    ref = drift.reference(traffic["reference"], scored(traffic["reference"], 1))
    empty = traffic["reference"].limit(0)
    measured = drift.measure(empty, scored(empty, 1), ref, "v1", T0, T1)
    assert measured.rows == 0 and measured.flagged == [] and set(measured.psi.values()) == {None}
