"""Embedding-derived features: clusters and components per post, user tastes and ALS factors before a cutoff."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from batch.pipeline.embed import EmbeddingInfo, PostEmbeddings
from batch.pipeline.embed_features import (
    EmbedFeature,
    EmbedParams,
    PostMixtures,
    UserPostSpace,
    als_space,
    build_embedding_features,
    component_names,
    distance_names,
    post_embedding_features,
    post_matrix,
    pruned_text_similarity,
    taste_space,
    text_neighbours,
)

CUTOFF = datetime(2021, 12, 1)


def embeddings(vectors: list[list[float]], post_ids: list[int] | None = None) -> PostEmbeddings:
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    ids = np.asarray(post_ids or list(range(1, len(vectors) + 1)), dtype=np.int32)
    return PostEmbeddings(post_ids=ids, vectors=matrix, info=EmbeddingInfo(method="hand", dim=matrix.shape[1]))


def likes(rows: list[tuple[int, int, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"user_id": pl.Int32, "post_id": pl.Int32, "timestamp": pl.Datetime("us")},
        orient="row",
    )


def test_post_features_put_separated_groups_in_their_own_clusters() -> None:
    group_a = [[1.0, 0.1 * i, 0.0] for i in range(4)]
    group_b = [[0.0, 0.1 * i, 1.0] for i in range(4)]
    frame = post_embedding_features(embeddings(group_a + group_b), components=2, clusters=2)
    assert frame.columns == ["post_id", *component_names(2), EmbedFeature.CLUSTER, *distance_names(2)]
    labels = frame[EmbedFeature.CLUSTER].to_list()
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[4]
    own = frame.select(pl.col(distance_names(2)[int(labels[0])])).to_series()[:4]
    other = frame.select(pl.col(distance_names(2)[int(labels[4])])).to_series()[:4]
    assert (own < other).all()


def test_post_features_shrink_to_a_tiny_catalog() -> None:
    frame = post_embedding_features(embeddings([[1.0, 0.0], [0.0, 1.0]]), components=5, clusters=15)
    assert frame.columns == ["post_id", *component_names(2), EmbedFeature.CLUSTER, *distance_names(2)]


def test_post_matrix_follows_the_requested_order() -> None:
    features = pl.DataFrame({"post_id": [1, 2], "a": [10.0, 20.0], "b": [1.0, 2.0]})
    matrix = post_matrix(features, [2, 9, 1])
    np.testing.assert_array_equal(matrix[[0, 2]], [[20.0, 2.0], [10.0, 1.0]])
    assert np.isnan(matrix[1]).all() and matrix.dtype == np.float32


POSTS_2D = embeddings([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])


def test_taste_is_the_time_decayed_mean_of_liked_posts() -> None:
    rows = [(10, 1, CUTOFF - timedelta(days=60)), (10, 2, CUTOFF - timedelta(days=30))]
    space = taste_space(likes(rows), POSTS_2D, CUTOFF, half_life_days=30)
    # Weights 0.25 and 0.5: taste along (1, 2) / sqrt(5).
    np.testing.assert_allclose(space.user_rows([10])[0], np.array([1.0, 2.0]) / math.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose(space.score_block([10]), [[1 / math.sqrt(5), 2 / math.sqrt(5), 2.2 / math.sqrt(5)]])


def test_tastes_asked_for_in_blocks_are_the_rows_of_the_whole_taste_matrix() -> None:
    rng = np.random.default_rng(3)
    catalog = embeddings(rng.normal(size=(40, 8)).tolist())
    rows = [(int(u), int(p), CUTOFF - timedelta(hours=int(h))) for u, p, h in rng.integers(1, 40, size=(300, 3))]
    space = taste_space(likes(rows), catalog, CUTOFF)
    assert isinstance(space.user_vectors, PostMixtures)

    whole = space.user_vectors.take(np.arange(space.user_ids.size))
    block = space.user_rows(space.user_ids[[5, 0, 17]])

    np.testing.assert_array_equal(block, whole[[5, 0, 17]])
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, rtol=1e-5)
    assert space.user_vectors.shape == whole.shape == (space.user_ids.size, 8)


@pytest.mark.parametrize(("half_life", "closer_to"), [(1.0, 2), (10_000.0, 1)])
def test_half_life_sets_how_much_old_likes_count(half_life: float, closer_to: int) -> None:
    rows = [
        (10, 1, CUTOFF - timedelta(days=20)),
        (10, 1, CUTOFF - timedelta(days=21)),
        (10, 2, CUTOFF - timedelta(days=1)),
    ]
    scores = taste_space(likes(rows), POSTS_2D, CUTOFF, half_life_days=half_life).score_block([10])[0]
    assert int(np.argmax(scores[:2])) + 1 == closer_to


def test_users_without_likes_and_unknown_posts_score_zero() -> None:
    space = taste_space(likes([(10, 1, CUTOFF - timedelta(days=1))]), POSTS_2D, CUTOFF)
    block = space.score_block([11, 10], post_ids=[3, 99])
    np.testing.assert_allclose(block, [[0.0, 0.0], [0.6, 0.0]], atol=1e-7)


def test_pairs_and_blocks_agree() -> None:
    rows = [
        (10, 1, CUTOFF - timedelta(days=3)),
        (11, 3, CUTOFF - timedelta(days=2)),
        (12, 2, CUTOFF - timedelta(days=1)),
    ]
    space = taste_space(likes(rows), POSTS_2D, CUTOFF)
    blocks = list(space.score_blocks([12, 10, 11], block_users=2))
    assert [ids.tolist() for ids, _ in blocks] == [[12, 10], [11]]
    full = np.vstack([block for _, block in blocks])
    pairs = space.score_pairs([10, 11, 12, 12], [3, 1, 2, 3], chunk=3)
    np.testing.assert_allclose(pairs, [full[1, 2], full[2, 0], full[0, 1], full[0, 2]], rtol=1e-6)
    assert pairs.dtype == np.float32 and full.dtype == np.float32


def community_likes() -> pl.DataFrame:
    """Users 0..9 like posts 1..5, users 10..19 like posts 6..10; user 0 never liked post 5."""
    rows = []
    for user in range(20):
        own = range(1, 6) if user < 10 else range(6, 11)
        rows += [(user, post, CUTOFF - timedelta(days=1 + user % 3)) for post in own if (user, post) != (0, 5)]
    return likes(rows)


def als(frame: pl.DataFrame) -> UserPostSpace:
    return als_space(frame, CUTOFF, user_ids=range(21), post_ids=range(1, 11), factors=2, seed=3, num_threads=1)


def test_als_ranks_a_post_of_the_users_community_above_the_others() -> None:
    space = als(community_likes())
    scores = space.score_block([0])[0]
    assert scores[4] > scores[5:].max()  # post 5, unseen by user 0, beats every post of the other community
    assert not space.user_rows([20]).any()  # user 20 never liked anything: zero factors


LATE = [(0, 7, CUTOFF), (0, 8, CUTOFF + timedelta(hours=2)), (10, 1, CUTOFF + timedelta(days=3)), (5, 9, CUTOFF)]


@pytest.mark.parametrize("build", ["taste", "als"])
def test_likes_at_or_after_the_cutoff_change_nothing(build: str) -> None:
    before = community_likes()
    vectors = embeddings([[1.0 + (p % 3), float(p), 2.0] for p in range(1, 11)])

    def scores(frame: pl.DataFrame) -> np.ndarray:
        space = taste_space(frame, vectors, CUTOFF) if build == "taste" else als(frame)
        return space.score_block(np.arange(21))

    with_late = pl.concat([before, likes(LATE)])
    np.testing.assert_array_equal(scores(before), scores(with_late))
    one_earlier = pl.concat([before, likes([(0, 7, CUTOFF - timedelta(microseconds=1))])])
    assert not np.array_equal(scores(before), scores(one_earlier))  # the check itself can fail


def test_view_rows_are_not_likes() -> None:
    rows = likes([(10, 1, CUTOFF - timedelta(days=1)), (10, 2, CUTOFF - timedelta(days=1))])
    feed = rows.with_columns(pl.Series("action", ["like", "view"]))
    space = taste_space(feed, POSTS_2D, CUTOFF)
    np.testing.assert_allclose(space.user_rows([10]), [[1.0, 0.0]])


PARAMS = EmbedParams(components=2, clusters=3, half_life_days=10, seed=1, post_columns=True)


def catalog_vectors() -> PostEmbeddings:
    return embeddings([[1.0 + (p % 3), float(p), 2.0] for p in range(1, 11)])


def test_feature_set_names_pairs_and_blocks_agree() -> None:
    features = build_embedding_features(catalog_vectors(), community_likes(), CUTOFF, PARAMS)
    assert features.names == (
        *component_names(2),
        EmbedFeature.CLUSTER,
        *distance_names(3),
        EmbedFeature.TASTE_COSINE,
        EmbedFeature.TEXT_KNN,
    )
    users, posts = np.array([0, 12, 20]), np.array([5, 1, 99, 7])
    block = np.full((users.size * posts.size, len(features.names) + 2), -1.0, dtype=np.float32, order="F")
    features.fill_block(block[:, 1:-1], users, posts)
    pairs = features.pair_matrix(np.repeat(users, posts.size), np.tile(posts, users.size))
    np.testing.assert_allclose(block[:, 1:-1], pairs, rtol=1e-5, atol=1e-6)
    assert (block[:, [0, -1]] == -1.0).all()  # columns outside the slice are left alone
    unknown_post = pairs[2::4]
    assert np.isnan(unknown_post[:, :6]).all() and (unknown_post[:, 6:] == 0).all()


def test_by_default_the_feature_set_has_no_post_columns_and_the_same_taste() -> None:
    lean = build_embedding_features(catalog_vectors(), community_likes(), CUTOFF, replace(PARAMS, post_columns=False))
    full = build_embedding_features(catalog_vectors(), community_likes(), CUTOFF, PARAMS)
    users, posts = np.repeat(np.arange(21), 10), np.tile(np.arange(1, 11), 21)

    assert lean.names == (EmbedFeature.TASTE_COSINE, EmbedFeature.TEXT_KNN) and not EmbedParams().post_columns
    np.testing.assert_array_equal(lean.pair_matrix(users, posts), full.pair_matrix(users, posts)[:, -2:])


def test_a_version_saved_before_the_option_reads_with_post_columns() -> None:
    saved = asdict(PARAMS)
    del saved["post_columns"]

    assert EmbedParams.from_saved(saved) == PARAMS
    assert not EmbedParams.from_saved(asdict(EmbedParams())).post_columns


def test_a_version_saved_before_the_text_knn_builds_without_it() -> None:
    saved = asdict(PARAMS)
    del saved["text_neighbours"]
    params = EmbedParams.from_saved(saved)

    features = build_embedding_features(catalog_vectors(), community_likes(), CUTOFF, params)

    assert params == replace(PARAMS, text_neighbours=0)
    assert features.names[-1] == EmbedFeature.TASTE_COSINE and EmbedFeature.TEXT_KNN not in features.names
    assert EmbedParams.from_saved(asdict(EmbedParams())).text_neighbours == EmbedParams().text_neighbours > 0


def test_feature_set_ignores_likes_after_the_cutoff() -> None:
    def matrix(frame: pl.DataFrame) -> np.ndarray:
        features = build_embedding_features(catalog_vectors(), frame, CUTOFF, PARAMS)
        return features.pair_matrix(np.repeat(np.arange(21), 10), np.tile(np.arange(1, 11), 21))

    np.testing.assert_array_equal(matrix(community_likes()), matrix(pl.concat([community_likes(), likes(LATE)])))


def sub_topic_catalog() -> PostEmbeddings:
    """Posts 1..4 near axis x, 5..8 near axis y (two sub-topics), 9 exactly between them, 10 on axis z."""
    near_x = [[1.0, 0.05 * i, 0.0] for i in range(4)]
    near_y = [[0.05 * i, 1.0, 0.0] for i in range(4)]
    return embeddings([*near_x, *near_y, [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_pruned_text_similarity_keeps_each_posts_nearest_positive_cosines_but_itself() -> None:
    vectors = sub_topic_catalog().vectors
    similar = pruned_text_similarity(vectors, neighbours=3).toarray()
    cosine = vectors @ vectors.T

    for post in range(vectors.shape[0]):
        kept = np.flatnonzero(similar[post])
        assert post not in kept and kept.size <= 3
        np.testing.assert_allclose(similar[post, kept], cosine[post, kept], rtol=1e-6)
        others = np.setdiff1d(np.arange(vectors.shape[0]), [post, *kept])
        assert cosine[post, others].max(initial=0.0) <= cosine[post, kept].min(initial=1.0) + 1e-6
    assert not similar[9].any()  # post 10 is orthogonal to every other post: no positive neighbour


def test_text_knn_keeps_each_sub_topic_of_a_user_where_the_taste_mean_blurs_them() -> None:
    # User 1 liked two posts of each sub-topic; its mean taste points exactly at post 9, between them. Each post
    # keeps its 3 nearest: its own sub-topic's.
    catalog = sub_topic_catalog()
    rows = likes([(1, post, CUTOFF - timedelta(days=1)) for post in (1, 2, 5, 6)])
    taste = taste_space(rows, catalog, CUTOFF)
    knn = text_neighbours(taste, catalog, neighbours=3)
    candidates = np.array([3, 4, 7, 8, 9])

    by_taste = taste.score_block([1], candidates)[0]
    by_knn = knn.score_block([1], candidates)[0]

    assert by_taste.argmax() == 4  # post 9
    assert by_knn[:4].min() > by_knn[4]  # each sub-topic's unliked posts beat the midpoint
    np.testing.assert_array_equal(knn.score_block([2], candidates), 0.0)  # a user without a like


def test_text_knn_pairs_equal_its_blocks_and_unknown_ids_score_zero() -> None:
    catalog = sub_topic_catalog()
    knn = text_neighbours(taste_space(community_likes(), catalog, CUTOFF), catalog)
    users, posts = np.array([0, 12, 20, 999]), np.array([5, 1, 99, 7])

    block = knn.score_block(users, posts)
    pairs = knn.score_pairs(np.repeat(users, posts.size), np.tile(posts, users.size))

    np.testing.assert_array_equal(pairs, block.ravel())
    assert (block[:, 2] == 0).all() and (block[3] == 0).all()
    assert block[:3].any()
    # Each row is a mean over the user's like weights (they sum to 1), so a score never passes the best cosine.
    assert block.max() <= 1.0 + 1e-6


def test_text_knn_without_any_like_scores_zero() -> None:
    catalog = sub_topic_catalog()
    knn = text_neighbours(taste_space(likes([]), catalog, CUTOFF), catalog)

    assert knn.user_ids.size == 0
    np.testing.assert_array_equal(knn.score_block([1, 2], [3, 4]), np.zeros((2, 2)))
    np.testing.assert_array_equal(knn.score_pairs([1, 2], [3, 4]), [0.0, 0.0])
