"""Exhaustive scoring on tiny feature sets: top-K order and ties, liked posts left out, agreement with CatBoost."""

from __future__ import annotations

from datetime import datetime

import catboost
import numpy as np
import pytest

from batch.pipeline.embed import EmbeddingInfo
from batch.pipeline.embed_features import EmbeddingFeatureSet, UserPostSpace
from batch.pipeline.features import (
    FEATURE_NAMES,
    POST_FEATURES,
    USER_FEATURES,
    USER_TOPIC_FEATURES,
    Feature,
    FeatureSet,
    pair_matrix,
)
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.options import served_groups
from batch.pipeline.score import popular_order, popular_top, predict_raw, score_users
from batch.ranking.topk import NO_POST, TopK, merge_top, sortable_keys, top_k

N_USERS, N_POSTS, N_TOPICS = 7, 13, 3


def make_features(liked: dict[int, list[int]] | None = None, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    liked = liked or {}
    indptr = np.zeros(N_USERS + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(liked.get(u, [])) for u in range(N_USERS)])
    posts = rng.random((N_POSTS, len(POST_FEATURES))).astype(np.float32)
    posts[:, POST_FEATURES.index(Feature.POST_LIKES)] = [5, 9, 9, 1, 0, 3, 9, 2, 2, 7, 4, 6, 8]
    return FeatureSet(
        cutoff=datetime(2021, 12, 30),
        user_ids=np.arange(100, 100 + N_USERS, dtype=np.int32),
        users=rng.random((N_USERS, len(USER_FEATURES))).astype(np.float32),
        post_ids=np.arange(1, N_POSTS + 1, dtype=np.int32) * 10,
        posts=posts,
        post_topics=rng.integers(0, N_TOPICS, N_POSTS),
        user_topics=rng.random((N_USERS, N_TOPICS, len(USER_TOPIC_FEATURES))).astype(np.float32),
        liked_indptr=indptr,
        liked_posts=np.array([p for u in range(N_USERS) for p in liked.get(u, [])], dtype=np.int64),
        viewed_indptr=np.zeros(N_USERS + 1, dtype=np.int64),
        viewed_posts=np.zeros(0, dtype=np.int16),
        like_prior=0.1,
        last_like_days=np.where(np.diff(indptr) > 0, 18_990.0, np.nan),
    )


@pytest.fixture(scope="module")
def model() -> catboost.CatBoostClassifier:
    features = make_features(seed=1)
    rng = np.random.default_rng(2)
    users, posts = rng.integers(0, N_USERS, 400), rng.integers(0, N_POSTS, 400)
    matrix = pair_matrix(features, users, posts, rng.random((400, 3)).astype(np.float32) * 20)
    labels = (matrix[:, 0] + matrix[:, len(USER_FEATURES) + 2] + rng.random(400) > 1.4).astype(int)
    model = catboost.CatBoostClassifier(
        iterations=30, depth=4, random_seed=0, verbose=False, thread_count=1, allow_writing_files=False
    )
    return model.fit(catboost.Pool(matrix, labels, feature_names=list(FEATURE_NAMES)))


@pytest.mark.parametrize(
    ("scores", "k", "expected"),
    [
        ([0.5, 0.9, 0.1, 0.7], 2, [1, 3]),
        ([0.5, 0.5, 0.5, 0.5], 3, [0, 1, 2]),  # ties: smaller position (post id) first
        ([0.2, 0.9, 0.9, -0.0, 0.0], 5, [1, 2, 0, 3, 4]),  # -0.0 and 0.0 tie as well
        ([1.0, -np.inf, 3.0], 3, [2, 0, 1]),
        ([-1.5, -0.5, -2.5], 1, [1]),
    ],
)
def test_top_k_orders_by_score_then_position(scores, k, expected):
    assert top_k(np.array([scores], dtype=np.float32), k)[0].tolist() == expected


def test_sortable_keys_order_like_the_floats():
    values = np.array([[-np.inf, -3.5, -1e-30, 0.0, 1e-30, 2.0, np.inf]], dtype=np.float32)

    keys = sortable_keys(values)[0]

    assert (np.diff(keys >> 32) > 0).all()


def test_scores_match_catboost_on_each_pair_and_keep_the_best(model):
    features = make_features()
    users = features.user_ids[[4, 0]]

    top = score_users(model, ModelInputs(features), users, k=5)

    moment = np.repeat(np.array([[20, 3, 12]], dtype=np.float32), N_POSTS, axis=0)
    for row, position in enumerate([4, 0]):
        matrix = pair_matrix(features, np.full(N_POSTS, position), np.arange(N_POSTS), moment)
        raw = predict_raw(model, matrix).astype(np.float32)
        best = sorted(range(N_POSTS), key=lambda j: (-raw[j], j))[:5]
        assert top.post_ids[row].tolist() == features.post_ids[best].tolist()
        np.testing.assert_allclose(top.scores[row], raw[best])
    assert top.user_ids.tolist() == users.tolist()


def test_liked_posts_are_never_returned_and_short_lists_are_padded(model):
    liked = {0: list(range(N_POSTS - 2)), 3: [0, 5]}
    features = make_features(liked)

    top = score_users(model, ModelInputs(features), features.user_ids, k=N_POSTS)

    assert top.post_ids[0, :2].tolist() and (top.post_ids[0, 2:] == NO_POST).all()
    for user, positions in liked.items():
        assert not set(features.post_ids[positions].tolist()) & set(top.post_ids[user].tolist())
    assert (top.post_ids[1] != NO_POST).all()


@pytest.mark.parametrize("block_rows", [1, N_POSTS * 2, 10_000])
def test_blocks_do_not_change_the_result(model, block_rows):
    features = make_features({2: [1, 2]})

    reference = score_users(model, ModelInputs(features), features.user_ids, k=4)
    blocked = score_users(model, ModelInputs(features), features.user_ids, k=4, block_rows=block_rows)

    np.testing.assert_array_equal(reference.post_ids, blocked.post_ids)


@pytest.mark.parametrize("block_rows", [1, N_POSTS * 2])
def test_building_the_next_block_in_a_second_thread_changes_nothing(model, block_rows):
    features = make_features({2: [1, 2], 5: [0]})
    inputs = ModelInputs(features)

    one_thread = score_users(model, inputs, features.user_ids, k=4, block_rows=block_rows, threads=1)
    overlapped = score_users(model, inputs, features.user_ids, k=4, block_rows=block_rows, threads=2)

    np.testing.assert_array_equal(one_thread.post_ids, overlapped.post_ids)
    np.testing.assert_array_equal(one_thread.scores, overlapped.scores)
    np.testing.assert_array_equal(one_thread.user_ids, overlapped.user_ids)


def test_same_inputs_give_the_same_top_5(model):
    features = make_features()

    first = score_users(model, ModelInputs(features), features.user_ids, k=5)
    second = score_users(model, ModelInputs(features), features.user_ids, k=5)

    np.testing.assert_array_equal(first.post_ids, second.post_ids)


def test_unknown_user_is_an_error(model):
    with pytest.raises(KeyError, match="unknown user"):
        score_users(model, ModelInputs(make_features()), [1], k=5)


def test_popular_ranks_by_likes_then_post_id_and_leaves_out_liked():
    features = make_features({0: [1]})

    top = popular_top(features, features.user_ids[:2], k=4)

    assert popular_order(features)[:5].tolist() == [20, 30, 70, 130, 100]
    assert top.post_ids.tolist() == [[30, 70, 130, 100], [20, 30, 70, 130]]


def test_popular_in_blocks_of_one_user_equals_one_block():
    features = make_features({0: [1], 2: [1, 2]})  # liked post positions: ids 20 and 30 for user 2
    users = features.user_ids[[2, 0, 1]]

    whole = popular_top(features, users, k=4)
    blocked = popular_top(features, users, k=4, block_rows=1)

    np.testing.assert_array_equal(blocked.post_ids, whole.post_ids)
    np.testing.assert_array_equal(blocked.scores, whole.scores)
    assert blocked.user_ids.tolist() == users.tolist() and blocked.post_ids[0].tolist()[:2] == [70, 130]


def make_extra(seed: int = 3) -> EmbeddingFeatureSet:
    rng = np.random.default_rng(seed)
    post_ids = np.arange(1, N_POSTS + 1, dtype=np.int32) * 10
    space = UserPostSpace(
        name="taste_cosine",
        user_ids=np.arange(100, 100 + N_USERS, dtype=np.int32),
        user_vectors=rng.random((N_USERS, 4)).astype(np.float32),
        post_ids=post_ids,
        post_vectors=rng.random((N_POSTS, 4)).astype(np.float32),
    )
    posts = rng.random((N_POSTS, 2)).astype(np.float32)
    return EmbeddingFeatureSet(EmbeddingInfo("tfidf-svd", 4), post_ids, posts, ("emb_pc_0", "emb_pc_1"), (space,))


def test_a_model_with_embedding_features_scores_as_catboost_does_on_each_pair():
    features, extra = make_features(seed=1), make_extra()
    rng = np.random.default_rng(4)
    users, posts = rng.integers(0, N_USERS, 400), rng.integers(0, N_POSTS, 400)
    matrix = pair_matrix(features, users, posts, rng.random((400, 3)).astype(np.float32) * 20, len(extra.names))
    matrix[:, len(FEATURE_NAMES) :] = extra.pair_matrix(features.user_ids[users], features.post_ids[posts])
    labels = (matrix[:, -1] + rng.random(400) * 0.5 > 1.2).astype(int)
    names = [*FEATURE_NAMES, *extra.names]
    model = catboost.CatBoostClassifier(
        iterations=30, depth=4, random_seed=0, verbose=False, thread_count=1, allow_writing_files=False
    )
    model.fit(catboost.Pool(matrix, labels, feature_names=names))

    top = score_users(model, ModelInputs(features, extra), features.user_ids[[2, 5]], k=4)

    moment = np.repeat(np.array([[20, 3, 12]], dtype=np.float32), N_POSTS, axis=0)
    for row, position in enumerate([2, 5]):
        pairs = pair_matrix(features, np.full(N_POSTS, position), np.arange(N_POSTS), moment, len(extra.names))
        pairs[:, len(FEATURE_NAMES) :] = extra.pair_matrix(
            np.full(N_POSTS, features.user_ids[position]), extra.post_ids
        )
        raw = predict_raw(model, pairs).astype(np.float32)
        best = sorted(range(N_POSTS), key=lambda j: (-raw[j], j))[:4]
        assert top.post_ids[row].tolist() == features.post_ids[best].tolist()
    assert model.get_feature_importance()[len(FEATURE_NAMES) :].sum() > 0  # the extra columns were read


def test_merge_top_orders_the_groups_rows_by_user():
    first = TopK(np.array([5, 1], np.int32), np.array([[50], [10]], np.int32), np.array([[0.5], [0.1]], np.float32))
    second = TopK(np.array([3], np.int32), np.array([[30]], np.int32), np.array([[0.3]], np.float32))

    merged = merge_top([first, second])

    assert merged.user_ids.tolist() == [1, 3, 5]
    assert merged.post_ids[:, 0].tolist() == [10, 30, 50]
    assert merged.scores[:, 0].tolist() == pytest.approx([0.1, 0.3, 0.5])


@pytest.mark.parametrize(("percent", "groups"), [(100, ("control",)), (0, ("test",)), (50, ("control", "test"))])
def test_a_one_sided_split_serves_one_group(percent, groups):
    assert served_groups(percent) == groups
