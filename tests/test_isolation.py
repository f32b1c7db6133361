"""Finding the records behind a failure (fraud.isolation.culprits), and not blaming records for the
environment's failures."""

import pytest

from fraud.isolation import UNPROCESSABLE, culprits


def failing_on(bad: set[int], message: str = "value refused"):
    def attempt(subset: list[int]) -> None:
        if bad & set(subset):
            raise ValueError(message)
    return attempt


def test_bisection_finds_exactly_the_rows_that_fail():
    found = culprits(range(100), failing_on({3, 71}))
    assert sorted(found) == [3, 71] and all(reason.startswith(UNPROCESSABLE) for reason in found.values())
    assert culprits(range(100), failing_on(set())) == {}


def test_a_failure_without_any_row_blames_no_row():
    """A probe that fails on an empty subset fails for the environment (a bad model pointer, an
    unreadable registry): every record would otherwise be quarantined as unprocessable."""
    def environment_down(subset: list[int]) -> None:
        raise RuntimeError("current.json names '../x', not a model version")

    assert culprits(range(50), environment_down) == {}


def test_a_transient_error_propagates():
    def outage(subset: list[int]) -> None:
        raise TimeoutError("connection timed out")

    with pytest.raises(TimeoutError):
        culprits(range(10), outage)
