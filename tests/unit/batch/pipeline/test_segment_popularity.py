"""Segment lift: users grouped by gender and age band and by operating system, each post's smoothed lift in a group,
tilting the scores of users without history only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from batch.pipeline.features import USER_FEATURES, Feature, FeatureSet
from batch.pipeline.score import tilt_users_without_history
from batch.pipeline.segment_popularity import (
    AGE_BANDS,
    MODEL_WEIGHT,
    SEGMENTS,
    fit_segment_lift,
    segment_likes,
    tilt_towards_segment,
    user_os,
    user_segments,
    without_history,
)
from tests.unit.batch.pipeline.test_score import N_POSTS, N_USERS, make_features

AGE, GENDER, OS = (USER_FEATURES.index(name) for name in (Feature.AGE, Feature.GENDER, Feature.OS))
# Users 0-2: men in their 20s on system 0, who liked post 1; users 3-5: women in their 50s on system 1, who liked
# post 2 (user 2 also 4); user 6, a man of 80 on system 0, liked nothing.
LIKED = {0: [1], 1: [1], 2: [1, 4], 3: [2], 4: [2], 5: [2]}


def people(liked: dict[int, list[int]] | None = None) -> FeatureSet:
    features = make_features(liked)
    users = features.users.copy()
    users[:, AGE], users[:, GENDER] = [25, 26, 27, 55, 56, 57, 80], [0, 0, 0, 1, 1, 1, 0]
    users[:, OS] = [0, 0, 0, 1, 1, 1, 0]
    return replace(features, users=users)


def test_segments_are_gender_times_age_decade_with_the_young_and_old_ends_pooled():
    rows = np.zeros((7, len(USER_FEATURES)), dtype=np.float32)
    rows[:, AGE] = [14, 19, 25, 37, 69, 95, np.nan]
    rows[:, GENDER] = [0, 1, 0, 1, 0, 1, np.nan]

    segments = user_segments(rows)

    assert segments.tolist() == [0, AGE_BANDS + 0, 1, AGE_BANDS + 2, 5, AGE_BANDS + 6, 0]
    assert segments.max() < SEGMENTS


def test_each_segment_counts_its_own_likes():
    features = people(LIKED)
    young_men, women_50s = user_segments(features.users[[0, 3]])

    likes = segment_likes(features)

    assert likes.sum() == 7
    assert likes[young_men].tolist() == [0, 3, 0, 0, 1] + [0] * (N_POSTS - 5)
    assert likes[women_50s].tolist() == [0, 0, 3] + [0] * (N_POSTS - 3)


def test_a_segment_lifts_the_posts_it_likes_more_than_everyone_and_a_segment_without_likes_lifts_nothing():
    features = people(LIKED)
    young_men, women_50s, old_men = user_segments(features.users[[0, 3, 6]])

    lift = fit_segment_lift(features, prior_likes=1.0).lift

    assert lift.shape == (SEGMENTS, N_POSTS)
    assert lift[young_men, 1] > 0 > lift[women_50s, 1]
    assert lift[women_50s, 2] > 0 > lift[young_men, 2]
    np.testing.assert_allclose(lift[old_men], 0.0, atol=1e-6)
    # Overall share of post 1: (3 + 1) / (7 + 13); the young men's: (3 + 1 x that) / (4 + 1).
    overall = 4 / 20
    assert lift[young_men, 1] == pytest.approx(np.log((3 + overall) / 5 / overall), rel=1e-5)


def test_each_operating_system_lifts_what_its_users_like_and_a_user_gets_both_lifts():
    features = people(LIKED)
    table = fit_segment_lift(features, prior_likes=1.0)

    assert table.os_lift.shape == (2, N_POSTS)
    assert table.os_lift[0, 1] > 0 > table.os_lift[1, 1]
    assert table.os_lift[1, 2] > 0 > table.os_lift[0, 2]
    old_man = features.users[[6]]
    np.testing.assert_allclose(table.user_lift(old_man)[0], table.lift[user_segments(old_man)[0]] + table.os_lift[0])


def test_a_missing_or_unknown_operating_system_counts_as_the_last_code():
    rows = np.zeros((4, len(USER_FEATURES)), dtype=np.float32)
    rows[:, OS] = [0, 1, np.nan, 7]

    assert user_os(rows, 3).tolist() == [0, 1, 2, 2]


def test_only_users_who_neither_liked_nor_were_shown_anything_have_no_history():
    features = people(LIKED)
    shown = replace(features, viewed_indptr=np.array([0, 0, 0, 0, 0, 0, 0, 1]), viewed_posts=np.array([3]))

    assert without_history(features, np.arange(N_USERS)).tolist() == [False] * 6 + [True]
    assert without_history(shown, np.arange(N_USERS)).tolist() == [False] * 7  # user 6 was shown post 3


def test_the_tilt_moves_the_scores_of_users_without_history_only():
    features = people(LIKED)
    table = fit_segment_lift(features)
    users = np.array([6, 0])  # the man of 80 has no history; user 0 has
    scores = np.zeros((2, N_POSTS), dtype=np.float32)

    tilt_users_without_history(scores, features, users, table)

    # Flat scores follow popularity not at all (slope 0): the segment's whole log share comes in.
    popularity = table.log_share - table.log_share.mean()
    np.testing.assert_allclose(scores[0], table.user_lift(features.users[[6]])[0] + popularity, atol=1e-5)
    assert (scores[1] == 0).all()


def test_scores_that_follow_popularity_one_for_one_rank_as_the_peers_popularity():
    features = people(LIKED)
    table = fit_segment_lift(features, prior_likes=1.0)
    lifts = table.user_lift(features.users[[0]])
    scores = (table.log_share + 2.0)[None, :]

    tilted = tilt_towards_segment(scores, lifts, table)

    # Nothing beyond popularity: the peers' log share, up to a constant.
    left = tilted[0] - (table.log_share + lifts[0])
    np.testing.assert_allclose(left, left.mean(), atol=1e-5)


@pytest.mark.parametrize("weight", [0.0, MODEL_WEIGHT, 1.0])
def test_the_popularity_in_the_scores_is_swapped_for_the_peers_and_the_rest_kept_at_its_weight(weight: float):
    features = people(LIKED)
    table = fit_segment_lift(features, prior_likes=1.0)
    lifts = table.user_lift(features.users[[0, 3]])  # a young man and a woman in her 50s
    # The model's log-odds: 0.7 x the log overall share, plus a quality part unrelated to it.
    quality = np.zeros(N_POSTS)
    quality[[3, 4]] = [0.5, -0.5]
    popularity = table.log_share - table.log_share.mean()
    beyond = quality - quality @ popularity / (popularity @ popularity) * popularity
    scores = np.vstack([0.7 * popularity + beyond] * 2).astype(np.float32)

    tilted = tilt_towards_segment(scores, lifts, table, model_weight=weight)

    # What is left: the groups' log share (lifts + overall log share) and the weighted quality part, up to a constant.
    left = tilted - (lifts + table.log_share[None, :])
    np.testing.assert_allclose(left - left.mean(axis=1, keepdims=True), weight * np.vstack([beyond] * 2), atol=1e-4)
    assert tilted[0].argmax() == 1 and tilted[1].argmax() == 2
