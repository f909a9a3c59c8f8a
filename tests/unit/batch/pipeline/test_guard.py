"""The publication guard's decision on hand-made per-user hits."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from batch.pipeline.comparison import Benchmark, compare
from batch.pipeline.guard import check_publishable
from batch.ranking.recommenders.tuning import Tuned
from common.errors import WorseThanBaselineError


def benchmark_of(model_hits: list[float], baseline_hits: list[float]) -> Benchmark:
    model = {"control": np.array(model_hits)}
    baseline = np.array(baseline_hits)
    tuned = {"ease": Tuned("ease", {"regularization": 300.0}, float(baseline.mean()), baseline)}
    return Benchmark(len(model_hits), tuned, model, compare(model, tuned, seed=0))


WORSE = benchmark_of([0.0] * 150 + [1.0] * 50, [1.0] * 150 + [0.0] * 50)  # 0.25 against 0.75
LEVEL = benchmark_of([1.0, 0.0] * 100, [0.0, 1.0] * 100)  # 0.5 each, different users hit


def test_compare_pairs_users_with_the_best_baseline() -> None:
    item = WORSE.comparisons[0]
    assert (item.model, item.baseline) == ("control", "ease")
    assert (item.model_hitrate, item.baseline_hitrate) == (0.25, 0.75)
    assert item.difference_high < 0 and item.worse


def test_a_worse_model_is_refused_with_both_figures() -> None:
    with pytest.raises(WorseThanBaselineError, match=r"control hitrate@5 0\.2500 against ease 0\.7500"):
        check_publishable(WORSE, allow_worse=False)


def test_a_level_model_publishes() -> None:
    assert not LEVEL.comparisons[0].worse
    check_publishable(LEVEL, allow_worse=False)


def test_allow_worse_publishes_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_publishable(WORSE, allow_worse=True)
    assert "--allow-worse" in caplog.text and "0.2500" in caplog.text
