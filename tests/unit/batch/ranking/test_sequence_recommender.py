"""The sequence model's vectors as a recommender: lined up with the interactions by id, and seen posts left out."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from batch.ranking.recommenders.interactions import build_interactions, viewed_csr
from batch.ranking.recommenders.recommender import recommend_block
from batch.ranking.sequence.recommender import SequenceRecommender
from batch.ranking.sequence.vectors import SequenceVectors

CUTOFF = datetime(2021, 12, 1)


def test_scores_follow_the_ids_and_seen_posts_are_left_out() -> None:
    # The model knows users 10 and 30 and posts 1, 2, 3; the interactions also hold user 20 and post 4.
    vectors = SequenceVectors(
        user_ids=np.array([10, 30], dtype=np.int32),
        user_vectors=np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=np.float32),
        post_ids=np.array([1, 2, 3], dtype=np.int32),
        post_vectors=np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.5]], dtype=np.float32),
    )
    user_ids, post_ids = np.array([10, 20, 30], dtype=np.int32), np.array([1, 2, 3, 4], dtype=np.int32)
    views = pl.DataFrame({"user_id": [10], "post_id": [1]}, schema={"user_id": pl.Int32, "post_id": pl.Int32})
    likes = pl.DataFrame(schema={"timestamp": pl.Datetime("us"), "user_id": pl.Int32, "post_id": pl.Int32})
    interactions = build_interactions(user_ids, post_ids, viewed_csr(user_ids, post_ids, views), likes, CUTOFF)
    recommender = SequenceRecommender(vectors)
    recommender.fit(interactions)

    scores = recommender.score_block(np.array([0, 1, 2]))
    np.testing.assert_allclose(scores, [[3.0, 0.0, 1.5, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 1.5, 0.0]])
    best, _ = recommend_block(recommender, interactions, np.array([0, 2]), 2)
    # User 10 viewed post 1 (its best score): post 3 comes first instead.
    assert post_ids[best].tolist() == [[3, 2], [2, 3]]


def test_standardized_scores_are_each_users_z_scores_in_the_same_order() -> None:
    vectors = SequenceVectors(
        user_ids=np.array([10, 30, 40], dtype=np.int32),
        # User 40 has no state: it scores posts by their bias alone.
        user_vectors=np.array([[2.0, 0.0, 1.0], [0.5, 1.5, 1.0], [0.0, 0.0, 1.0]], dtype=np.float32),
        post_ids=np.array([1, 2, 3, 4], dtype=np.int32),
        post_vectors=np.array([[3.0, 0.0, 0.2], [0.0, 3.0, 0.1], [1.0, 1.0, 0.5], [0.0, 0.0, -1.0]], dtype=np.float32),
    )
    raw = vectors.scores([0, 1, 2]).astype(np.float64)
    standard = vectors.standardized().scores([0, 1, 2]).astype(np.float64)
    expected = (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, keepdims=True)
    np.testing.assert_allclose(standard, expected, atol=1e-5)
    assert (np.argsort(standard, axis=1) == np.argsort(raw, axis=1)).all()
    np.testing.assert_allclose(vectors.score_spreads(), raw.std(axis=1), rtol=1e-5)


def test_a_user_whose_scores_are_all_equal_scores_zero() -> None:
    vectors = SequenceVectors(
        user_ids=np.array([10], dtype=np.int32),
        user_vectors=np.array([[1.0, 0.0]], dtype=np.float32),
        post_ids=np.array([1, 2], dtype=np.int32),
        post_vectors=np.array([[2.0, 0.0], [2.0, 5.0]], dtype=np.float32),
    )
    np.testing.assert_array_equal(vectors.standardized().scores([0]), [[0.0, 0.0]])
