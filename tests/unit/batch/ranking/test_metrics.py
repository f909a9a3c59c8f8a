"""Metric functions on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from batch.ranking.metrics import (
    bootstrap_interval,
    catalog_coverage,
    gap_closure,
    group_means,
    hit_matrix,
    hitrate_per_user,
    ndcg_per_user,
    precision_per_user,
)

RECOMMENDED = np.array([[1, 2, 3], [4, 5, 6], [7, 8, -1]], dtype=np.int64)
RELEVANT = [{3, 9}, {10}, {7, 8}]


def test_hits_hitrate_and_precision() -> None:
    hits = hit_matrix(RECOMMENDED, RELEVANT)
    assert hits.tolist() == [[False, False, True], [False, False, False], [True, True, False]]
    assert hitrate_per_user(hits).tolist() == [1.0, 0.0, 1.0]
    assert precision_per_user(hits) == pytest.approx([1 / 3, 0.0, 2 / 3])


def test_ndcg_by_hand() -> None:
    hits = hit_matrix(RECOMMENDED, RELEVANT)
    ndcg = ndcg_per_user(hits, np.array([2, 1, 2]))
    # user 0: one hit at rank 3 -> 1/log2(4) = 0.5; ideal with 2 relevant: 1 + 1/log2(3)
    assert ndcg[0] == pytest.approx(0.5 / (1 + 1 / math.log2(3)))
    assert ndcg[1] == 0.0
    assert ndcg[2] == pytest.approx(1.0)


def test_bootstrap_interval_brackets_the_mean_and_is_degenerate_for_constants() -> None:
    values = np.array([0.0, 1.0] * 200)
    low, high = bootstrap_interval(values, seed=1)
    assert low < 0.5 < high and high - low < 0.15
    assert bootstrap_interval(np.ones(50)) == (1.0, 1.0)


@pytest.mark.parametrize(("model", "expected"), [(0.3, 0.0), (0.5, 0.5), (0.7, 1.0)])
def test_gap_closure(model: float, expected: float) -> None:
    assert gap_closure(model, popular=0.3, oracle=0.7) == pytest.approx(expected)


def test_coverage_ignores_padding() -> None:
    assert catalog_coverage(RECOMMENDED, catalog_size=16) == pytest.approx(8 / 16)


def test_group_means() -> None:
    assert group_means(np.array([1.0, 0.0, 1.0]), ["b", "a", "b"]) == {"a": 0.0, "b": 1.0}
