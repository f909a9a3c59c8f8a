"""Baselines on tiny hand-made like frames."""

from __future__ import annotations

import numpy as np
import polars as pl

from batch.ranking.baselines import als_ranking, popular_ranking, random_ranking, segment_popular_ranking

POSTS = np.array([1, 2, 3, 4, 5], dtype=np.int64)
USERS = np.array([10, 11, 12], dtype=np.int64)
LIKES = pl.DataFrame(
    {"user_id": [10, 10, 11, 11, 12, 12, 11], "post_id": [3, 4, 3, 4, 3, 5, 5]},
    schema={"user_id": pl.Int32, "post_id": pl.Int32},
)
USER_FRAME = pl.DataFrame(
    {"user_id": [10, 11, 12], "age": [16, 45, 47], "gender": [0, 1, 1]},
    schema={"user_id": pl.Int32, "age": pl.Int16, "gender": pl.Int8},
)


def test_popular_orders_by_likes_then_id() -> None:
    ranked = popular_ranking(LIKES, USERS, POSTS, k=4)
    assert ranked.tolist() == [[3, 4, 5, 1]] * 3


def test_segment_popular_uses_the_segment_first_then_global_order() -> None:
    ranked = segment_popular_ranking(LIKES, USER_FRAME, USERS, POSTS, k=3)
    assert ranked[0].tolist() == [3, 4, 5]  # segment (0, <18): user 10 liked 3 and 4; then global: 5
    assert ranked[1].tolist() == [3, 5, 4]  # segment (1, 40-50): 3 and 5 liked twice (id breaks the tie), 4 once


def test_random_is_a_seeded_permutation_per_user() -> None:
    first = random_ranking(USERS, POSTS, k=5, seed=7)
    assert (np.sort(first, axis=1) == POSTS).all()
    assert (first == random_ranking(USERS, POSTS, k=5, seed=7)).all()
    assert not (first == random_ranking(USERS, POSTS, k=5, seed=8)).all()


def test_als_returns_catalog_posts_for_every_user() -> None:
    ranked = als_ranking(LIKES, np.array([10, 11, 12, 99]), POSTS, k=3, seed=1, factors=4)
    assert ranked.shape == (4, 3) and np.isin(ranked, POSTS).all()
    assert ranked[3].tolist() == [3, 4, 5]  # no likes: popularity order
