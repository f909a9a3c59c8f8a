"""Numeric building blocks of the synthetic world: quotas, id ranges, tabulated distributions."""

from __future__ import annotations

import numpy as np
import pytest

from batch.world.dist import (
    age_pmf,
    apportion,
    hour_like_effect,
    hour_view_shape,
    quota_labels,
    sample_like_delays,
    segment_starts,
    spread_ids,
    zipf_weights,
)
from batch.world.facts import AGE_MEAN, AGE_MEDIAN, AGE_MODE, AGE_QUARTILES, LIKE_DELAY_QUARTILES


@pytest.mark.parametrize(
    ("shares", "total", "expected"),
    [
        ([1, 1], 3, [2, 1]),
        ([0.5, 0.3, 0.2], 10, [5, 3, 2]),
        ([143_035, 8_273, 162], 1000, [944, 55, 1]),
        ([1, 1, 1], 0, [0, 0, 0]),
    ],
)
def test_apportion_is_exact_and_proportional(shares, total, expected):
    counts = apportion(shares, total)
    assert counts.tolist() == expected
    assert counts.sum() == total


def test_quota_labels_have_exact_counts_in_random_order():
    labels = quota_labels(np.random.default_rng(0), [0.6, 0.4], 1000)
    assert np.bincount(labels).tolist() == [600, 400]
    assert not np.all(np.diff(labels) >= 0)


@pytest.mark.parametrize(("count", "first", "last"), [(10, 200, 300), (2, 1, 5), (5, 1, 5), (1, 7, 9)])
def test_spread_ids_are_sorted_distinct_and_span_the_range(count, first, last):
    ids = spread_ids(np.random.default_rng(1), count, first, last)
    assert len(ids) == count
    assert np.all(np.diff(ids) > 0)
    assert ids[0] == first
    assert ids[-1] <= last
    if count >= 2 and last - first + 1 > count:
        assert ids[-1] == last


def test_age_pmf_has_the_real_summary_statistics():
    ages, pmf = age_pmf()
    cdf = np.cumsum(pmf)
    assert pmf.sum() == pytest.approx(1.0)
    assert (ages * pmf).sum() == pytest.approx(AGE_MEAN, abs=0.05)
    assert ages[np.searchsorted(cdf, 0.5)] == AGE_MEDIAN
    assert ages[np.argmax(pmf)] == AGE_MODE
    assert (ages[np.searchsorted(cdf, 0.25)], ages[np.searchsorted(cdf, 0.75)]) == AGE_QUARTILES
    assert (ages[0], ages[-1]) == (14, 95)


def test_like_delays_have_the_real_quartiles():
    delays = sample_like_delays(np.random.default_rng(2), 200_000)
    assert np.percentile(delays, [25, 50, 75]) == pytest.approx(LIKE_DELAY_QUARTILES, abs=1.5)
    assert delays.min() > 0


def test_views_peak_and_likes_rise_in_the_evening():
    shape, effect = hour_view_shape(), hour_like_effect()
    assert shape.sum() == pytest.approx(1.0)
    assert len(shape) == len(effect) == 18
    evening, morning = slice(14, 17), slice(0, 3)
    assert shape[evening].mean() > shape[morning].mean()
    assert effect[evening].mean() > effect[morning].mean()


def test_zipf_weights_decrease_and_sum_to_one():
    weights = zipf_weights(50, 1.05)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(np.diff(weights) < 0)


def test_segment_starts():
    assert segment_starts(np.array([2, 0, 3])).tolist() == [0, 2, 2]
