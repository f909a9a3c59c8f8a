"""The world's truth and the oracle: consistent with the feed it generated, and well behaved at the edges."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from batch.world.generator import generate_tables
from batch.world.truth import (
    WorldParams,
    daily_post_exposure,
    group_exposure,
    oracle_scores,
    oracle_scores_per_user,
    topic_level_truth,
    trend_bump,
)
from common.errors import DataValidationError

WINDOW = (datetime(2021, 12, 16), datetime(2021, 12, 30))


@pytest.fixture(scope="module")
def tiny():
    _users, _posts, feed, truth = generate_tables("tiny", 11)
    return feed, truth


def test_params_survive_json(tiny):
    _, truth = tiny
    assert WorldParams.from_json(truth.params.to_json()) == truth.params


def test_exposure_mixes_are_distributions(tiny):
    _, truth = tiny
    mix = group_exposure(truth, np.arange(len(truth.user_id)))
    assert np.allclose(mix.sum(axis=1), 1.0)
    assert mix.min() >= 0
    daily = daily_post_exposure(truth)
    assert np.all(daily[:, ~truth.post_shown] == 0)
    for subtopic in np.unique(truth.post_group[truth.post_shown]):
        assert np.allclose(daily[:, truth.post_group == subtopic].sum(axis=1), 1.0)


def test_oracle_is_zero_outside_the_period_and_for_hidden_or_seen_posts(tiny):
    _, truth = tiny
    users, posts = truth.user_id[:20], truth.post_id
    assert np.all(oracle_scores(truth, users, posts, datetime(2021, 9, 1), datetime(2021, 10, 1)) == 0)
    assert np.all(oracle_scores(truth, users, posts, WINDOW[0], WINDOW[0]) == 0)
    scores = oracle_scores(truth, users, posts, *WINDOW)
    assert scores.dtype == np.float32
    assert scores.shape == (20, len(posts))
    assert np.all(scores[:, ~truth.post_shown] == 0)
    seen = np.zeros(scores.shape, dtype=bool)
    seen[:, :10] = True
    conditional = oracle_scores(truth, users, posts, *WINDOW, seen_before=seen)
    assert np.all(conditional[:, :10] == 0)
    assert np.all(conditional[:, 10:] >= scores[:, 10:] - 1e-7)


def test_a_longer_window_never_lowers_the_oracle(tiny):
    _, truth = tiny
    short = oracle_scores(truth, truth.user_id[:20], truth.post_id, datetime(2021, 12, 20), datetime(2021, 12, 25))
    long = oracle_scores(truth, truth.user_id[:20], truth.post_id, datetime(2021, 12, 18), datetime(2021, 12, 30))
    assert np.all(long >= short - 1e-7)


def test_unknown_ids_are_rejected(tiny):
    _, truth = tiny
    with pytest.raises(DataValidationError, match="re-seed"):
        oracle_scores(truth, [1], truth.post_id, *WINDOW)


@pytest.mark.parametrize(
    ("world", "start"),
    [
        ("text", datetime(2021, 12, 16)),
        ("collab", datetime(2021, 12, 16)),
        ("popular", datetime(2021, 12, 16)),
        ("bursty", datetime(2021, 6, 1)),  # a longer window: bursty users are rarely active in any given fortnight
        ("fleeting", datetime(2021, 6, 1)),
    ],
)
def test_expected_likes_in_a_window_match_the_generated_feed(world, start):
    """The oracle is the model the feed was drawn from: its expected like count is the realised one."""
    _users, _posts, feed, truth = generate_tables("tiny", 11, world)
    window = (start, datetime(2021, 12, 30))
    expected = oracle_scores(truth, truth.user_id, truth.post_id, *window).sum()
    in_window = (pl.col("timestamp") >= window[0]) & (pl.col("timestamp") < window[1])
    realised = feed.filter(in_window & (pl.col("action") == "view") & (pl.col("target") == 1)).height
    assert realised == pytest.approx(expected, rel=0.1)


def test_liked_pairs_score_far_above_the_average_pair(tiny):
    feed, truth = tiny
    scores = oracle_scores(truth, truth.user_id, truth.post_id, *WINDOW)
    in_window = (pl.col("timestamp") >= WINDOW[0]) & (pl.col("timestamp") < WINDOW[1])
    likes = feed.filter(in_window & (pl.col("action") == "like"))
    liked = scores[truth.user_rows(likes["user_id"].to_numpy()), truth.post_rows(likes["post_id"].to_numpy())]
    assert liked.mean() > 5 * scores.mean()


def test_topic_level_truth_keeps_topic_means_and_hides_sub_topic_differences(tiny):
    truth = tiny[1]
    blurred = topic_level_truth(truth)
    topics = np.array(truth.params.group_topics)
    for topic in np.unique(topics):
        members = topics == topic
        for field in ("user_group_taste", "user_interest"):
            exact, known = getattr(truth, field)[:, members], getattr(blurred, field)[:, members]
            assert np.allclose(known.mean(axis=1), exact.mean(axis=1))
            assert np.allclose(known, known[:, :1])  # one value per user within the topic
    assert np.array_equal(blurred.user_topic_taste, truth.user_topic_taste)
    assert np.array_equal(blurred.post_quality, truth.post_quality)
    only_tastes = topic_level_truth(truth, tastes=True, interests=False)
    assert np.array_equal(only_tastes.user_interest, truth.user_interest)


def test_a_trend_rises_to_its_peak_then_decays():
    truth = generate_tables("tiny", 11, "popular")[3]
    one_post = replace(truth, post_trend_days=np.array([2.0]), params=replace(truth.params, trend_rise_days=1.5))
    age = np.array([[-0.1], [0.0], [1.5], [3.5]])
    # before release: nothing; release day: 1 / (1.5 + 1); peak after 1.5 days; then exp(-2 / 2)
    assert trend_bump(one_post, age)[:, 0] == pytest.approx([0.0, 0.4, 1.0, np.exp(-1.0)])
    jump = replace(one_post, params=replace(truth.params, trend_rise_days=0.0))
    assert trend_bump(jump, age)[:, 0] == pytest.approx([0.0, 1.0, np.exp(-0.75), np.exp(-1.75)])


def test_a_bursty_user_can_like_only_on_its_active_days():
    _users, _posts, _feed, truth = generate_tables("tiny", 11, "bursty")
    ptr, start = truth.user_day_ptr, truth.params.start
    last_day = np.array([truth.user_days[ptr[u + 1] - 1] for u in range(len(truth.user_id))])
    first_day = np.array([truth.user_days[ptr[u]] for u in range(len(truth.user_id))])
    window = (datetime(2021, 7, 1), datetime(2021, 8, 1))
    scores = oracle_scores(truth, truth.user_id, truth.post_id, *window)
    gone = last_day < (window[0] - start).days
    not_yet = first_day >= (window[1] - start).days
    assert gone.any() and not_yet.any()
    assert np.all(scores[gone | not_yet] == 0)
    inside = np.array(
        [
            np.any((truth.user_days[ptr[u] : ptr[u + 1]] >= 273) & (truth.user_days[ptr[u] : ptr[u + 1]] < 304))
            for u in range(len(truth.user_id))
        ]
    )  # July 2021 = days 273..303 of the period
    assert np.all(scores[inside].sum(axis=1) > 0)


def test_per_user_windows_score_each_user_as_its_own_window(tiny):
    """A per-user hold-out: each row is the oracle of that user's own window, seen-before masks included."""
    _, truth = tiny
    users, posts = truth.user_id[:6], truth.post_id
    window = timedelta(days=7)
    starts = [datetime(2021, 12, 10), datetime(2021, 12, 20), datetime(2021, 12, 10), *[datetime(2021, 11, 5)] * 3]
    seen = np.zeros((6, len(posts)), dtype=bool)
    seen[1, :5] = True
    scores = oracle_scores_per_user(truth, users, posts, starts, window, seen_before=seen)
    for row, start in enumerate(starts):
        alone = oracle_scores(
            truth, users[row : row + 1], posts, start, start + window, seen_before=seen[row : row + 1]
        )
        np.testing.assert_allclose(scores[row], alone[0], rtol=1e-6)
    later = oracle_scores(truth, users[:1], posts, starts[1], starts[1] + window)[0]
    assert not np.allclose(scores[0], later)  # user 0 is scored in its own window, not another user's
    with pytest.raises(ValueError, match="one start per user"):
        oracle_scores_per_user(truth, users, posts, starts[:2], window)
