"""Reference rows on tiny hand-made like frames."""

from __future__ import annotations

import numpy as np
import polars as pl

from batch.ranking.baselines import popular_ranking, random_ranking

POSTS = np.array([1, 2, 3, 4, 5], dtype=np.int64)
USERS = np.array([10, 11, 12], dtype=np.int64)
LIKES = pl.DataFrame(
    {"user_id": [10, 10, 11, 11, 12, 12, 11], "post_id": [3, 4, 3, 4, 3, 5, 5]},
    schema={"user_id": pl.Int32, "post_id": pl.Int32},
)


def test_popular_orders_by_likes_then_id() -> None:
    ranked = popular_ranking(LIKES, USERS, POSTS, k=4)
    assert ranked.tolist() == [[3, 4, 5, 1]] * 3


def test_random_is_a_seeded_permutation_per_user() -> None:
    first = random_ranking(USERS, POSTS, k=5, seed=7)
    assert (np.sort(first, axis=1) == POSTS).all()
    assert (first == random_ranking(USERS, POSTS, k=5, seed=7)).all()
    assert not (first == random_ranking(USERS, POSTS, k=5, seed=8)).all()
