"""The hold-out on hand-made feeds: who is evaluated, what counts, and the leakage guard's shuffle."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from batch.evaluation.holdout import build_holdout, shuffled_holdout, user_groups

SCHEMA = {"timestamp": pl.Datetime("us"), "user_id": pl.Int32, "post_id": pl.Int32, "action": pl.String}
T0 = datetime(2021, 10, 1, 12)


def feed(rows: list[tuple[int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame([(T0, *row) for row in rows], schema=SCHEMA, orient="row")


def test_only_new_likes_in_the_window_count() -> None:
    before = feed([(1, 10, "like"), (2, 11, "like")])
    window = feed([(1, 10, "like"), (1, 12, "like"), (2, 11, "like"), (3, 13, "like"), (3, 13, "like")])
    holdout = build_holdout(before, window)
    assert holdout.user_ids.tolist() == [1, 3]  # user 2 only re-liked a post liked before
    assert holdout.relevant == [{12}, {13}]
    assert holdout.relevant_counts.tolist() == [1, 1]


def test_shuffle_keeps_sizes_but_moves_likes() -> None:
    before = feed([])
    window = feed([(u, p, "like") for u in range(1, 40) for p in (u, u + 100)])
    holdout = build_holdout(before, window)
    posts = np.arange(0, 200, dtype=np.int64)
    shuffled = shuffled_holdout(holdout, posts, seed=3)
    assert (shuffled.user_ids == holdout.user_ids).all()
    assert sorted(map(len, shuffled.relevant)) == sorted(map(len, holdout.relevant))
    assert sum(a == b for a, b in zip(shuffled.relevant, holdout.relevant, strict=True)) < 3


def test_groups_per_user() -> None:
    views = pl.DataFrame({"user_id": [1, 2], "views": [150, 1]}, schema={"user_id": pl.Int32, "views": pl.UInt32})
    cutoff = datetime(2021, 12, 1)
    likes = pl.DataFrame(
        {
            "timestamp": [cutoff - timedelta(days=400), cutoff - timedelta(hours=30), cutoff - timedelta(days=29)],
            "user_id": [1, 1, 2],
            "post_id": [10, 11, 11],
        },
        schema={"timestamp": pl.Datetime("us"), "user_id": pl.Int32, "post_id": pl.Int32},
    )
    posts = pl.DataFrame(
        {"post_id": [10, 11], "topic": ["sport", "movie"]}, schema={"post_id": pl.Int32, "topic": pl.String}
    )
    groups = user_groups(views, likes, posts, np.array([1, 2, 3]), salt="s", control_percent=100, cutoff=cutoff)
    assert groups["exp_group"] == ["control"] * 3
    assert groups["activity"] == ["0100-0299 views", "0000-0099 views", "0000-0099 views"]
    assert groups["topic"] == ["movie", "movie", "no like before T"]  # a tie (one like each) goes to the first name
    # The latest like counts (user 1's 30 hours, not its 400 days), in whole days.
    assert groups["last_like"] == ["0001-0006 days", "0007-0029 days", "no like before T"]


def test_last_like_buckets_cover_the_same_day_and_the_oldest() -> None:
    cutoff = datetime(2021, 12, 1)
    likes = pl.DataFrame(
        {
            "timestamp": [cutoff - timedelta(minutes=5), cutoff - timedelta(days=365)],
            "user_id": [1, 2],
            "post_id": [10, 10],
        },
        schema={"timestamp": pl.Datetime("us"), "user_id": pl.Int32, "post_id": pl.Int32},
    )
    views = pl.DataFrame(schema={"user_id": pl.Int32, "views": pl.UInt32})
    posts = pl.DataFrame({"post_id": [10], "topic": ["sport"]}, schema={"post_id": pl.Int32, "topic": pl.String})
    groups = user_groups(views, likes, posts, np.array([1, 2]), salt="s", control_percent=100, cutoff=cutoff)
    assert groups["last_like"] == ["0000-0000 days", "0365+ days"]
