"""Seen-aware recommenders on tiny hand-made interactions."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from batch.ranking.positions import csr_entries
from batch.ranking.recommenders.ease import EASE, ease_weights
from batch.ranking.recommenders.interactions import Interactions, build_interactions, viewed_csr
from batch.ranking.recommenders.item_knn import pruned_cosine
from batch.ranking.recommenders.recommender import recommend_block
from batch.ranking.recommenders.registry import RECENT_POPULARITY, RECOMMENDERS
from batch.ranking.recommenders.tuning import GridHits, choose, hits, tune, window_target

CUTOFF = datetime(2026, 1, 1)
SCHEMA = {"timestamp": pl.Datetime("us"), "user_id": pl.Int32, "post_id": pl.Int32}
PAIRS = {"user_id": pl.Int32, "post_id": pl.Int32}
NO_VIEWS = pl.DataFrame(schema=PAIRS)


def likes_frame(rows: list[tuple[float, int, int]]) -> pl.DataFrame:
    """(days before the cutoff, user, post) rows as a like frame."""
    return pl.DataFrame(
        {
            "timestamp": [CUTOFF - timedelta(days=age) for age, _, _ in rows],
            "user_id": [user for _, user, _ in rows],
            "post_id": [post for _, _, post in rows],
        },
        schema=SCHEMA,
    )


def interactions_of(users: int, posts: int, likes: pl.DataFrame, views: pl.DataFrame) -> Interactions:
    user_ids, post_ids = np.arange(users, dtype=np.int32), np.arange(posts, dtype=np.int32)
    return build_interactions(user_ids, post_ids, viewed_csr(user_ids, post_ids, views), likes, CUTOFF)


def random_world(seed: int = 3) -> Interactions:
    """40 users x 30 posts: likes concentrated on the low posts, which half the users have also viewed."""
    rng = np.random.default_rng(seed)
    likes = [
        (float(rng.uniform(0, 30)), int(u), int(min(rng.geometric(0.15), 29))) for u in range(40) for _ in range(4)
    ]
    views = [(u, p) for u in range(0, 40, 2) for p in range(12)]
    view_frame = pl.DataFrame({"user_id": [u for u, _ in views], "post_id": [p for _, p in views]})
    return interactions_of(40, 30, likes_frame(likes), view_frame.cast(pl.Int32))


@pytest.mark.parametrize(
    ("name", "point"), [(name, point) for name in sorted(RECOMMENDERS) for point in range(len(RECOMMENDERS[name].grid))]
)
def test_no_recommender_returns_a_post_the_user_viewed_or_liked(name: str, point: int) -> None:
    interactions = random_world()
    spec = RECOMMENDERS[name]
    recommender = spec.make(spec.grid[point], 7)
    recommender.fit(interactions)
    users = np.arange(40, dtype=np.int64)
    best, scores = recommend_block(recommender, interactions, users, k=5)
    for indptr, indices in (interactions.viewed, interactions.liked):
        owners, columns = csr_entries(indptr, indices, users)
        seen = set(zip(owners.tolist(), columns.tolist(), strict=True))
        shown = {(row, int(post)) for row in range(40) for post in best[row]}
        assert seen, "the world must have seen posts for the filter to matter"
        assert not seen & shown
    assert np.isfinite(scores).all()  # every user has at least 5 unseen posts


def test_ease_weights_match_the_hand_computed_closed_form() -> None:
    # X'X = [[2,1,0],[1,2,1],[0,1,2]]; + I, inverted: P = [[8,-3,1],[-3,9,-3],[1,-3,8]] / 21; B = -P / diag(P).
    likes = likes_frame([(1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 2, 1), (1, 2, 2), (1, 3, 2)])
    interactions = interactions_of(4, 3, likes, NO_VIEWS)
    expected = np.array([[0, 1 / 3, -1 / 8], [3 / 8, 0, 3 / 8], [-1 / 8, 1 / 3, 0]])
    np.testing.assert_allclose(ease_weights(interactions.like_matrix(), 1.0), expected, atol=1e-6)


def test_ease_with_views_is_the_closed_form_of_the_weighted_matrix_applied_to_weighted_profiles() -> None:
    interactions = random_world()
    mixed = (interactions.like_matrix() + 0.2 * interactions.view_matrix()).toarray().astype(np.float64)
    inverse = np.linalg.inv(mixed.T @ mixed + 10.0 * np.eye(30))
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    recommender = EASE(10.0, view_weight=0.2)
    recommender.fit(interactions)
    users = np.arange(40, dtype=np.int64)
    np.testing.assert_allclose(recommender.score_block(users), mixed @ weights, rtol=1e-4, atol=1e-5)


def test_tuning_picks_the_half_life_that_finds_the_new_hit() -> None:
    # Posts 0-4 were liked a lot two months ago; post 5 by two users yesterday. In the window, four users with no
    # history like post 5: only a short half-life puts it in their top 5.
    old = [(60.0, user, post) for user in range(8) for post in range(5)]
    interactions = interactions_of(
        14,
        8,
        likes_frame([*old, (1.0, 8, 5), (1.0, 9, 5)]),
        NO_VIEWS,
    )
    window = pl.DataFrame({"user_id": [10, 11, 12, 13], "post_id": [5, 5, 5, 5]}, schema=PAIRS)
    target = window_target(interactions, window)
    tuned = tune(
        RECENT_POPULARITY, interactions, target, seed=1, grid=({"half_life_days": 1000.0}, {"half_life_days": 1.0})
    )
    assert tuned.params == {"half_life_days": 1.0}
    assert [rate for _, rate in tuned.tried] == [0.0, 1.0]


SHORT, LONG = {"half_life_days": 1.0}, {"half_life_days": 30.0}


def grid_of(short_hits: list[float], long_hits: list[float]) -> GridHits:
    """A two-point grid's hits on one window (short half life first)."""
    return GridHits(RECENT_POPULARITY, (SHORT, LONG), (np.array(short_hits), np.array(long_hits)))


def test_pooled_tuning_chooses_over_every_window_and_reports_the_last() -> None:
    # The validation window's 2 users prefer the short half life; the label window's 6 users the long one by more.
    validation = grid_of([1.0, 1.0], [1.0, 0.0])
    label = grid_of([0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    alone, pooled = choose(validation), choose(validation, label)
    assert alone.params == SHORT
    assert pooled.params == LONG
    assert pooled.hitrate == 0.5  # the validation window's figure at the chosen point
    assert pooled.per_user.tolist() == [1.0, 0.0]
    assert [rate for _, rate in pooled.tried] == [3 / 8, 5 / 8]


def test_pooled_tuning_refuses_grids_that_differ() -> None:
    other = GridHits(RECENT_POPULARITY, (SHORT,), (np.array([1.0]),))
    with pytest.raises(ValueError, match="cannot pool the grid of recent_popularity"):
        choose(grid_of([1.0], [0.0]), other)


def test_window_target_drops_likes_of_posts_liked_before() -> None:
    interactions = interactions_of(3, 4, likes_frame([(2, 0, 1)]), NO_VIEWS)
    window = pl.DataFrame({"user_id": [0, 0, 1, 2], "post_id": [1, 2, 1, 1]}, schema=PAIRS)
    target = window_target(interactions, window)
    assert target.user_positions.tolist() == [0, 1, 2]
    owners, columns = csr_entries(*target.relevant, target.user_positions)
    assert sorted(zip(owners.tolist(), columns.tolist(), strict=True)) == [(0, 2), (1, 1), (2, 1)]


def test_a_hit_needs_the_fresh_like_in_the_top_5() -> None:
    likes = likes_frame([(1, 0, post) for post in range(6)] + [(1, 1, 0)])
    interactions = interactions_of(3, 8, likes, NO_VIEWS)
    recommender = RECOMMENDERS["popularity"].make({}, 0)
    recommender.fit(interactions)
    # Popularity order: 0 (2 likes), 1..5, then 6, 7. User 1 saw post 0, so gets 1..5; user 2 gets 0..4.
    window = pl.DataFrame({"user_id": [1, 2], "post_id": [5, 5]}, schema=PAIRS)
    assert hits(recommender, interactions, window_target(interactions, window)).tolist() == [1.0, 0.0]


def test_item_knn_keeps_each_posts_most_similar_neighbour() -> None:
    # Users like {0, 1}, {0, 1}, {1, 2}: cos(0, 1) = 2 / sqrt(2 * 3), cos(1, 2) = 1 / sqrt(3 * 1), cos(0, 2) = 0.
    likes = likes_frame([(1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (1, 2, 1), (1, 2, 2)])
    similar = pruned_cosine(interactions_of(3, 3, likes, NO_VIEWS).like_matrix(), neighbours=1).toarray()
    near, far = 2 / np.sqrt(6), 1 / np.sqrt(3)
    np.testing.assert_allclose(similar, [[0, near, 0], [near, 0, far], [0, 0, 0]], atol=1e-6)


def test_ease_refuses_a_gram_matrix_that_is_not_positive_definite() -> None:
    likes = likes_frame([(1, 0, 0), (1, 1, 1)])
    with pytest.raises(ValueError, match="positive definite"):
        ease_weights(interactions_of(2, 3, likes, NO_VIEWS).like_matrix(), -5.0)
