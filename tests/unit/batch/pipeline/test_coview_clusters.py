"""The co-view clusters both models read: posts shown to the same users cluster together within their topic, and a
user's lifts follow their views and like rate in a cluster against their topic's and everyone's, from the liked and
shown posts alone."""

from __future__ import annotations

import numpy as np
import pytest

from batch.pipeline.coview_clusters import (
    CLUSTER_PRIOR_VIEWS,
    CoviewClusters,
    coview_vectors,
    fit_coview_clusters,
    per_cluster,
)
from batch.pipeline.features import USER_PRIOR_VIEWS, USER_TOPIC_PRIOR_VIEWS, FeatureSet
from tests.unit.batch.pipeline.test_cluster_lift import PER_CLUSTER, SUBTOPICS, TOPICS, feature_set

FIRST, SECOND = list(range(PER_CLUSTER)), list(range(PER_CLUSTER, 2 * PER_CLUSTER))
PRIOR = 0.1  # the feature sets' global like rate


def two_audiences(liked_by_first: list[int] | None = None) -> FeatureSet:
    """Users 0..9 were shown the first sub-topic's posts, users 10..19 the second's (topic 0 only); user 0 also
    liked ``liked_by_first``."""
    viewed = [FIRST if user < 10 else SECOND for user in range(20)]
    liked = [liked_by_first or []] + [[] for _ in range(19)]
    return feature_set(viewed, liked, np.full((20, 2), PRIOR, dtype=np.float32))


def fitted(features: FeatureSet) -> CoviewClusters:
    return fit_coview_clusters(features, clusters=4, dim=4, seed=0)


def test_coview_vectors_point_the_same_way_for_posts_shown_to_the_same_users() -> None:
    vectors = coview_vectors(two_audiences(), dim=4, seed=0)
    assert vectors.shape == (SUBTOPICS.size, 4)
    cosines = vectors @ vectors.T
    assert cosines[0, 1:PER_CLUSTER].min() > 0.99  # same audience
    assert abs(cosines[0, PER_CLUSTER]) < 0.01  # the other audience
    assert np.abs(vectors[2 * PER_CLUSTER :]).max() == 0.0  # never shown: no direction


def test_coview_vectors_need_two_users() -> None:
    features = feature_set([FIRST], [[]], np.full((1, 2), PRIOR, dtype=np.float32))
    assert coview_vectors(features, dim=4, seed=0).shape == (SUBTOPICS.size, 0)


def test_each_audience_is_one_cluster_inside_its_topic() -> None:
    clusters = fitted(two_audiences())
    assert np.unique(clusters.labels[FIRST]).size == 1 and np.unique(clusters.labels[SECOND]).size == 1
    assert clusters.labels[0] != clusters.labels[PER_CLUSTER]
    for label in np.unique(clusters.labels):
        assert np.unique(TOPICS[clusters.labels == label]).size == 1
        assert clusters.topics[label] == TOPICS[clusters.labels == label][0]


def test_too_few_users_give_one_cluster_per_topic() -> None:
    clusters = fitted(feature_set([FIRST], [[]], np.full((1, 2), PRIOR, dtype=np.float32)))
    np.testing.assert_array_equal(clusters.labels, TOPICS)


def test_view_lift_follows_the_users_share_of_a_cluster_against_everyones() -> None:
    features = two_audiences()
    clusters = fitted(features)
    view = clusters.lifts(features, np.array([0, 15]))[1]
    first, second = clusters.labels[0], clusters.labels[PER_CLUSTER]
    everyone = (100 + 1) / (200 + 2)  # each audience's share of topic 0's views, one view added per cluster
    own = (PER_CLUSTER + CLUSTER_PRIOR_VIEWS * everyone) / (PER_CLUSTER + CLUSTER_PRIOR_VIEWS)
    assert clusters.everyone[first] == pytest.approx(everyone)
    assert view[0, first] == pytest.approx(np.log(own / everyone), rel=1e-5) and view[0, first] > 0
    assert view[0, second] < 0 < view[1, second] and view[1, first] < 0


def test_like_lift_follows_the_users_like_rate_in_a_cluster_against_their_topic_rate() -> None:
    features = two_audiences(liked_by_first=FIRST[:5])
    clusters = fitted(features)
    like = clusters.lifts(features, np.array([0, 1]))[0]
    user_rate = (5 + USER_PRIOR_VIEWS * PRIOR) / (PER_CLUSTER + USER_PRIOR_VIEWS)
    topic_rate = (5 + USER_TOPIC_PRIOR_VIEWS * user_rate) / (PER_CLUSTER + USER_TOPIC_PRIOR_VIEWS)
    cluster_rate = (5 + CLUSTER_PRIOR_VIEWS * topic_rate) / (PER_CLUSTER + CLUSTER_PRIOR_VIEWS)
    first, second = clusters.labels[0], clusters.labels[PER_CLUSTER]
    assert like[0, first] == pytest.approx(np.log(cluster_rate / topic_rate), rel=1e-5) and like[0, first] > 0
    assert like[0, second] == pytest.approx(0.0, abs=1e-6)  # never shown the second: no evidence
    # User 1 was shown the first cluster's 10 posts and liked none: below their topic rate, which is shrunk
    # towards their overall rate and everyone's; the second cluster, never shown to them, says nothing.
    assert like[1, first] < 0 and like[1, second] == pytest.approx(0.0, abs=1e-6)


def test_columns_give_each_post_its_clusters_lifts_for_any_block_of_users() -> None:
    features = two_audiences(liked_by_first=FIRST[:5])
    clusters = fitted(features)
    users = np.array([15, 0, 3])
    likes_out = np.empty((users.size, SUBTOPICS.size), dtype=np.float32)
    views_out = np.empty_like(likes_out)

    clusters.write_columns(features, users, likes_out, views_out)

    like, view = clusters.lifts(features, np.arange(20))
    np.testing.assert_array_equal(likes_out, like[users][:, clusters.labels])
    np.testing.assert_array_equal(views_out, view[users][:, clusters.labels])


def test_counts_of_every_row_equal_those_of_the_rows_picked_one_by_one() -> None:
    features = two_audiences(liked_by_first=FIRST[:5])
    labels = fitted(features).labels
    count = int(labels.max()) + 1
    whole = per_cluster(features.viewed_indptr, features.viewed_posts, labels, count)
    picked = per_cluster(features.viewed_indptr, features.viewed_posts, labels, count, np.array([15, 0]))
    np.testing.assert_array_equal(picked, whole[[15, 0]])
    assert whole.sum() == features.viewed_posts.size
