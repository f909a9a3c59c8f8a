"""Paired differences: per-user hit differences of two recommenders, and the models against the best baseline."""

from __future__ import annotations

import numpy as np
import pytest

from batch.evaluation.paired import best_of, paired_differences


def served(*rows: list[int]) -> np.ndarray:
    return np.array(rows, dtype=np.int64)


# Four users; each liked one post in the hold-out.
RELEVANT = [{1}, {2}, {3}, {4}]
SERVED = {
    "control": served([1], [2], [9], [9]),  # hits users 0 and 1
    "test": served([1], [2], [3], [9]),  # hits users 0, 1 and 2
    "popularity": served([9], [2], [9], [9]),  # hits user 1
    "ease": served([1], [9], [3], [9]),  # hits users 0 and 2
    "random": served([1], [2], [3], [4]),  # not a seen-aware baseline: never the best
}


def test_differences_are_per_user_means_with_intervals_around_them():
    differences, best = paired_differences(SERVED, RELEVANT, [("test", "control")], ["popularity", "ease"], seed=0)

    assert best == "ease"
    assert differences["test - control"][0] == pytest.approx(0.25)
    assert differences["control - best baseline"][0] == pytest.approx(0.0)
    assert differences["test - best baseline"][0] == pytest.approx(0.25)
    for mean, low, high in differences.values():
        assert low <= mean <= high
    # test is never below control for any user, so no resample can put the difference below 0
    assert differences["test - control"][1] >= 0


def test_pairs_not_run_and_missing_baselines_are_left_out():
    only_control = {"control": SERVED["control"]}

    differences, best = paired_differences(only_control, RELEVANT, [("test", "control")], ["ease"], seed=0)

    assert differences == {} and best is None


def test_the_best_baseline_is_the_first_of_a_tie():
    assert best_of({"ease": 0.5, "als": 0.5, "popularity": 0.4}, ["als", "ease", "popularity"]) == "als"
    assert best_of({"control": 0.9}, ["ease"]) is None
