"""The posts' weighted like counts as of a moment: against a brute-force sum, on a short and a long feed."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from batch.pipeline.era_popularity import MAX_GRID_POINTS, fit_era_popularity, grid_step_days
from common.columns import Col

START = datetime(2021, 10, 1)
EPOCH = datetime(1970, 1, 1)
POST_IDS = np.array([3, 5, 8, 13], dtype=np.int32)
HALF_LIFE = 3.0


def like_frame(hours: list[float], posts: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            Col.TIMESTAMP: [START + timedelta(hours=h) for h in hours],
            Col.USER_ID: list(range(len(hours))),
            Col.POST_ID: posts,
        },
        schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32},
    )


def day_of(moment: datetime) -> float:
    return (moment - EPOCH).total_seconds() / 86_400


def brute_force(likes: pl.DataFrame, boundary: float, moment: float) -> np.ndarray:
    """Per post of POST_IDS, the likes strictly before ``boundary``, each weighted by its age at ``moment``."""
    out = np.zeros(POST_IDS.size)
    for when, post in zip(likes[Col.TIMESTAMP].to_list(), likes[Col.POST_ID].to_list(), strict=True):
        day = day_of(when)
        if day < boundary and post in POST_IDS:
            out[np.searchsorted(POST_IDS, post)] += 0.5 ** ((moment - day) / HALF_LIFE)
    return out


def random_likes(span_hours: float, count: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    # Post 99 is not in the catalog: its likes are ignored.
    posts = rng.choice([3, 5, 8, 13, 99], size=count).tolist()
    return like_frame(sorted(rng.uniform(0, span_hours, count).tolist()), posts)


@pytest.mark.parametrize("span_hours", [40.0, 3 * 365 * 24.0])
def test_a_moment_reads_the_likes_before_its_grid_point_decayed_to_it(span_hours: float):
    likes = random_likes(span_hours, 300, seed=int(span_hours))
    era = fit_era_popularity(likes, POST_IDS, HALF_LIFE)
    rng = np.random.default_rng(1)
    moments = np.concatenate(
        [
            day_of(START) + rng.uniform(-1, span_hours / 24 + 2, 20),
            era.origin_day + np.array([0, 3, 7]) * era.step_days,  # on grid points: likes there are not before
        ]
    )

    got = era.at(moments)

    for row, moment in enumerate(moments):
        point = np.clip(np.floor((moment - era.origin_day) / era.step_days), 0, era.counts.shape[0] - 1)
        boundary = era.origin_day + point * era.step_days
        expected = brute_force(likes, boundary, max(moment, boundary))
        np.testing.assert_allclose(got[row], expected, rtol=2e-4, atol=1e-6, err_msg=f"moment {moment}")


def test_the_last_point_holds_every_like_and_a_like_on_a_point_counts_only_after_it():
    # Likes at hours 0 and 2 on a one-hour grid from hour 0: point 2 (hour 2) holds only the first.
    likes = like_frame([0.0, 2.0], [3, 3])
    era = fit_era_popularity(likes, POST_IDS, HALF_LIFE)
    assert era.step_days == pytest.approx(1 / 24)

    at_two, late = era.at(np.array([day_of(START + timedelta(hours=2)), day_of(START + timedelta(days=30))]))

    assert at_two[0] == pytest.approx(0.5 ** ((2 / 24) / HALF_LIFE), rel=1e-5)
    assert late[0] == pytest.approx(0.5 ** (30 / HALF_LIFE) + 0.5 ** ((30 - 2 / 24) / HALF_LIFE), rel=1e-4)
    assert at_two[1:].tolist() == late[1:].tolist() == [0.0, 0.0, 0.0]


def test_a_user_without_a_like_reads_nan_and_a_feed_without_likes_reads_zeros():
    empty = fit_era_popularity(like_frame([], []), POST_IDS, HALF_LIFE)
    era = fit_era_popularity(like_frame([5.0], [8]), POST_IDS, HALF_LIFE)

    assert np.isnan(era.at(np.array([np.nan]))).all()
    assert empty.at(np.array([day_of(START)])).tolist() == [[0.0, 0.0, 0.0, 0.0]]


def test_the_grid_stays_within_its_points_in_whole_hours_for_any_span():
    for span_days in (0.0, 0.5, 30.0, 456.0, 5 * 365.0):
        step = grid_step_days(100.0, 100.0 + span_days)
        hours = step * 24
        assert hours == pytest.approx(round(hours)) and hours >= 1
        assert span_days / step <= MAX_GRID_POINTS - 1 + 1e-9

    long_feed = fit_era_popularity(random_likes(5 * 365 * 24.0, 50, seed=3), POST_IDS, HALF_LIFE)
    assert long_feed.counts.shape[0] <= MAX_GRID_POINTS + 1
