"""The text cluster lifts: clusters nest in topics and find the texts' sub-topics, a user's lifts follow their views
and like rate in a cluster against their topic's and everyone's, and blocks, pairs and the switch agree."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from batch.pipeline.cluster_lift import cluster_counts, cluster_spaces, with_cluster_lifts
from batch.pipeline.coview_clusters import CLUSTER_PRIOR_VIEWS, coview_vectors, topic_clusters
from batch.pipeline.embed import EmbeddingInfo, PostEmbeddings
from batch.pipeline.embed_features import EmbeddingFeatureSet, EmbedFeature, EmbedParams
from batch.pipeline.features import POST_FEATURES, USER_FEATURES, USER_TOPIC_FEATURES, Feature, FeatureSet

CUTOFF = datetime(2021, 12, 1)
PER_CLUSTER = 10
# Four sub-topics, two per topic: posts 0..9 and 10..19 are topic 0, posts 20..39 topic 1.
SUBTOPICS = np.repeat(np.arange(4), PER_CLUSTER)
TOPICS = SUBTOPICS // 2
RATE = USER_TOPIC_FEATURES.index(Feature.TOPIC_LIKE_RATE)


def catalog(seed: int = 0) -> PostEmbeddings:
    """One normalised vector per post: its sub-topic's axis plus a little noise."""
    rng = np.random.default_rng(seed)
    vectors = np.eye(4, dtype=np.float32)[SUBTOPICS] + rng.normal(0, 0.05, (SUBTOPICS.size, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return PostEmbeddings(np.arange(SUBTOPICS.size, dtype=np.int32), vectors, EmbeddingInfo("test", 4))


def csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.concatenate([[0], np.cumsum([len(row) for row in rows])]).astype(np.int64)
    posts = np.array([post for row in rows for post in sorted(row)], dtype=np.int16)
    return indptr, posts


def feature_set(viewed: list[list[int]], liked: list[list[int]], topic_rates: np.ndarray) -> FeatureSet:
    """A feature set whose only meaningful arrays are the views, likes, post topics and users' topic like rates."""
    users = len(viewed)
    user_topics = np.zeros((users, 2, len(USER_TOPIC_FEATURES)), dtype=np.float32)
    user_topics[:, :, RATE] = topic_rates
    (liked_indptr, liked_posts), (viewed_indptr, viewed_posts) = csr(liked), csr(viewed)
    return FeatureSet(
        cutoff=CUTOFF,
        user_ids=np.arange(users, dtype=np.int32),
        users=np.zeros((users, len(USER_FEATURES)), dtype=np.float32),
        post_ids=np.arange(SUBTOPICS.size, dtype=np.int32),
        posts=np.zeros((SUBTOPICS.size, len(POST_FEATURES)), dtype=np.float32),
        post_topics=TOPICS.astype(np.int64),
        user_topics=user_topics,
        liked_indptr=liked_indptr,
        liked_posts=liked_posts,
        viewed_indptr=viewed_indptr,
        viewed_posts=viewed_posts,
        like_prior=0.1,
        last_like_days=np.full(users, np.nan),
    )


def fan_of_first_subtopic() -> FeatureSet:
    """User 0 saw every post of topic 0 and liked 5 of the first sub-topic only (topic rate 0.25); user 1 saw
    nothing (topic rates 0.1)."""
    viewed = [list(range(2 * PER_CLUSTER)), []]
    liked = [list(range(5)), []]
    return feature_set(viewed, liked, np.array([[0.25, 0.1], [0.1, 0.1]], dtype=np.float32))


def test_clusters_nest_in_topics_and_find_the_sub_topics() -> None:
    labels = topic_clusters(catalog().vectors, TOPICS.astype(np.int64), clusters=4, seed=0)
    assert np.unique(labels).size == 4
    for subtopic in range(4):
        assert np.unique(labels[np.equal(SUBTOPICS, subtopic)]).size == 1  # a sub-topic is one cluster ...
    for label in np.unique(labels):
        assert np.unique(TOPICS[labels == label]).size == 1  # ... and a cluster lies in one topic


def test_a_topic_too_small_for_its_share_keeps_one_cluster() -> None:
    topics = np.array([0] * 38 + [1] * 2, dtype=np.int64)
    labels = topic_clusters(catalog().vectors, topics, clusters=4, seed=0)
    assert np.unique(labels[topics == 1]).size == 1
    assert np.unique(labels).size == 5  # round(4 * 38 / 40) = 4 in topic 0, and at least 1 in topic 1


def test_lift_is_above_zero_where_the_user_likes_more_than_in_the_topic_and_below_where_less() -> None:
    space = cluster_spaces(fan_of_first_subtopic(), catalog(), clusters=4, seed=0)[0]
    scores = space.score_block([0])[0]
    liked_share = (5 + CLUSTER_PRIOR_VIEWS * 0.25) / (PER_CLUSTER + CLUSTER_PRIOR_VIEWS)
    assert scores[:PER_CLUSTER] == pytest.approx(np.log(liked_share / 0.25), rel=1e-5)
    ignored_share = (0 + CLUSTER_PRIOR_VIEWS * 0.25) / (PER_CLUSTER + CLUSTER_PRIOR_VIEWS)
    assert scores[PER_CLUSTER : 2 * PER_CLUSTER] == pytest.approx(np.log(ignored_share / 0.25), rel=1e-5)
    assert scores[2 * PER_CLUSTER :] == pytest.approx(0.0, abs=1e-6)  # nothing seen in topic 1: no evidence


@pytest.mark.parametrize("which", [0, 1])
def test_a_user_without_views_or_outside_the_set_scores_zero(which: int) -> None:
    space = cluster_spaces(fan_of_first_subtopic(), catalog(), clusters=4, seed=0)[which]
    assert np.abs(space.score_block([1, 99])).max() == pytest.approx(0.0, abs=1e-6)


def test_a_topic_rate_of_zero_gives_finite_scores() -> None:
    features = feature_set([list(range(PER_CLUSTER))], [[]], np.zeros((1, 2), dtype=np.float32))
    for space in cluster_spaces(features, catalog(), clusters=4, seed=0):
        assert np.isfinite(space.score_block([0])).all()


def test_view_lift_is_above_zero_where_the_feed_shows_the_user_more_of_a_sub_topic_than_it_shows_others() -> None:
    # User 0 was shown 8 posts of the first sub-topic and 2 of the second, users 1 and 2 the opposite.
    first, second = list(range(PER_CLUSTER)), list(range(PER_CLUSTER, 2 * PER_CLUSTER))
    viewed = [first[:8] + second[:2], first[:2] + second[:8], first[:2] + second[:8]]
    features = feature_set(viewed, [[], [], []], np.full((3, 2), 0.1, dtype=np.float32))
    scores = cluster_spaces(features, catalog(), clusters=4, seed=0)[1].score_block([0, 1])
    everyone = (12 + 1) / (30 + 2)  # the first sub-topic's share of all views of topic 0, one view added per cluster
    own = (8 + CLUSTER_PRIOR_VIEWS * everyone) / (10 + CLUSTER_PRIOR_VIEWS)
    assert scores[0, 0] == pytest.approx(np.log(own / everyone), rel=1e-5) and scores[0, 0] > 0
    assert scores[0, PER_CLUSTER] < 0 < scores[1, PER_CLUSTER] and scores[1, 0] < 0
    assert scores[:, 2 * PER_CLUSTER :] == pytest.approx(0.0, abs=1e-6)  # topic 1: nobody saw it, no evidence


@pytest.mark.parametrize("which", [0, 1])
def test_pairs_equal_the_blocks(which: int) -> None:
    space = cluster_spaces(fan_of_first_subtopic(), catalog(), clusters=4, seed=0)[which]
    block = space.score_block([0, 1])
    users, posts = np.repeat([0, 1], SUBTOPICS.size), np.tile(np.arange(SUBTOPICS.size), 2)
    np.testing.assert_allclose(space.score_pairs(users, posts), block.ravel(), rtol=1e-6)


def empty_extra() -> EmbeddingFeatureSet:
    return EmbeddingFeatureSet(
        EmbeddingInfo("test", 4),
        np.arange(SUBTOPICS.size, dtype=np.int32),
        np.zeros((SUBTOPICS.size, 0), dtype=np.float32),
        (),
        (),
    )


def test_the_columns_are_added_last_and_zero_clusters_leave_them_out() -> None:
    params = replace(EmbedParams(), topic_clusters=4)
    added = with_cluster_lifts(empty_extra(), fan_of_first_subtopic(), catalog(), params)
    assert added.names == (EmbedFeature.CLUSTER_LIFT, EmbedFeature.CLUSTER_VIEWS)
    kept = with_cluster_lifts(empty_extra(), fan_of_first_subtopic(), catalog(), replace(params, topic_clusters=0))
    assert kept.names == ()


def test_a_version_saved_before_the_columns_builds_without_them() -> None:
    assert EmbedParams.from_saved({"text_neighbours": 50}).topic_clusters == 0
    assert EmbedParams.from_saved({"topic_clusters": 80}).coview_dim == 0
    assert EmbedParams().topic_clusters > 0 and EmbedParams().coview_dim > 0


def two_audiences() -> FeatureSet:
    """Users 0..9 were shown the first sub-topic's posts, users 10..19 the second's (topic 0 only)."""
    first, second = list(range(PER_CLUSTER)), list(range(PER_CLUSTER, 2 * PER_CLUSTER))
    viewed = [first if user < 10 else second for user in range(20)]
    return feature_set(viewed, [[] for _ in range(20)], np.full((20, 2), 0.1, dtype=np.float32))


def test_co_views_split_sub_topics_whose_texts_look_alike() -> None:
    # Every post of topic 0 has the same text vector: text alone cannot split its two sub-topics, co-views can.
    vectors = catalog().vectors.copy()
    vectors[: 2 * PER_CLUSTER] = vectors[0]
    same_text = PostEmbeddings(np.arange(SUBTOPICS.size, dtype=np.int32), vectors, EmbeddingInfo("test", 4))
    by_text = cluster_counts(two_audiences(), same_text, clusters=4, seed=0).labels
    both = cluster_counts(two_audiences(), same_text, 4, 0, coview_vectors(two_audiences(), dim=4, seed=0)).labels
    assert np.unique(by_text[: 2 * PER_CLUSTER]).size == 1
    assert np.unique(both[:PER_CLUSTER]).size == 1 and np.unique(both[PER_CLUSTER : 2 * PER_CLUSTER]).size == 1
    assert both[0] != both[PER_CLUSTER]


def test_co_views_made_for_the_collaborative_clusters_give_the_same_columns_as_made_here() -> None:
    params = replace(EmbedParams(), topic_clusters=4, coview_dim=4)
    features = two_audiences()
    made_here = with_cluster_lifts(empty_extra(), features, catalog(), params)
    reused = with_cluster_lifts(empty_extra(), features, catalog(), params, coview_vectors(features, dim=4, seed=0))
    for here, there in zip(made_here.spaces, reused.spaces, strict=True):
        np.testing.assert_array_equal(here.score_block(np.arange(20)), there.score_block(np.arange(20)))
