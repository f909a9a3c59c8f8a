"""The like timeline: local likes around each user's own time, and the gap between a post's peak and that time."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from batch.pipeline.features import FeatureSet
from batch.pipeline.like_timeline import HALF_WIDTH_DAYS, fit_timeline
from common.columns import Col

START = datetime(2021, 1, 1)
CUTOFF = START + timedelta(days=100)
POSTS = np.array([10, 20, 30], dtype=np.int32)


def likes_frame(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    """(day, user, post) rows as like rows at noon of that day."""
    return pl.DataFrame(
        [(START + timedelta(days=day, hours=12), user, post) for day, user, post in rows],
        schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32},
        orient="row",
    )


def liked_set(liked_positions: list[list[int]]) -> FeatureSet:
    """A feature set whose only meaningful arrays are each user's liked post positions."""
    indptr = np.concatenate([[0], np.cumsum([len(row) for row in liked_positions])]).astype(np.int64)
    posts = np.concatenate([np.array(row, dtype=np.int16) for row in liked_positions])
    users = len(liked_positions)
    return FeatureSet(
        cutoff=CUTOFF,
        user_ids=np.arange(users, dtype=np.int32),
        post_ids=POSTS,
        users=np.zeros((users, 1), np.float32),
        posts=np.zeros((POSTS.size, 1), np.float32),
        user_topics=np.zeros((users, 1, 1), np.float32),
        post_topics=np.zeros(POSTS.size, np.int64),
        liked_indptr=indptr,
        liked_posts=posts,
        viewed_indptr=indptr,
        viewed_posts=posts,
        like_prior=0.1,
    )


def test_local_likes_count_around_the_users_time_not_the_cutoff():
    # Post 10 peaks on day 5, post 20 on day 90, post 30 on day 50 (and is liked on day 100: after the cutoff).
    likes = likes_frame([(5, 1, 10), (5, 2, 10), (6, 3, 10), (90, 1, 20), (90, 2, 20), (50, 4, 30), (100, 5, 30)])
    timeline = fit_timeline(likes, POSTS, CUTOFF)
    features = liked_set([[0], [1], []])  # user 0 liked post 10 (peak day 5), user 1 post 20 (day 90), user 2 none
    local = np.empty((3, POSTS.size), np.float32)
    gap = np.empty_like(local)

    timeline.write_columns(features, np.arange(3), local, gap)

    assert local[0].tolist() == [3, 0, 0]  # around day 5: only post 10's likes
    assert local[1].tolist() == [0, 2, 0]  # around day 90
    assert local[2].tolist() == [0, 0, 0]  # no like, no time
    assert gap[0].tolist() == [0, 85, 45]
    assert gap[1].tolist() == [-85, 0, -40]
    assert np.isnan(gap[2]).all()
    assert timeline.days == 86  # day 0 is the first like (day 5); the last, day 90, is day 85
    assert HALF_WIDTH_DAYS < 40  # the peaks above are further apart than the window


def test_likes_at_or_after_the_cutoff_change_nothing():
    early = likes_frame([(5, 1, 10), (50, 2, 30)])
    late = likes_frame([(100, 3, 30), (120, 4, 20)])
    before = fit_timeline(early, POSTS, CUTOFF)
    both = fit_timeline(pl.concat([early, late]), POSTS, CUTOFF)
    np.testing.assert_array_equal(before.cumulative, both.cumulative)
    np.testing.assert_array_equal(before.peak_day, both.peak_day)


def test_a_feed_without_likes_gives_empty_columns():
    timeline = fit_timeline(likes_frame([]), POSTS, CUTOFF)
    local = np.empty((1, POSTS.size), np.float32)
    gap = np.empty_like(local)
    timeline.write_columns(liked_set([[]]), np.arange(1), local, gap)
    assert (local == 0).all() and np.isnan(gap).all()
