"""Training rows' own histories: a row's state holds the likes strictly before it (its own like never), the views
before its latest like, and its collaborative columns equal those of a feature set cut at the row's moment."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from batch.pipeline.collab_features import CollabParams, fit_collab
from batch.pipeline.features import FeatureSet, last_like_days
from batch.pipeline.row_history import RowHistories, row_histories
from common.columns import Col
from tests.unit.batch.pipeline.test_collab_features import CUTOFF, csr_feature_set

USERS, POSTS = 30, 24
EVENT_SCHEMA = {Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32}
PARAMS = CollabParams(neighbours=6, ease_regularization=4.0, als_factors=4, half_life_days=3.0, seed=5)


def at(hours: float) -> datetime:
    """A moment ``hours`` after the cutoff (negative: before it)."""
    return CUTOFF + timedelta(hours=hours)


def events(rows: list[tuple[float, int, int]]) -> pl.DataFrame:
    """(hours after the cutoff, user, post) rows as a (timestamp, user_id, post_id) frame."""
    return pl.DataFrame([(at(h), u, p) for h, u, p in rows], schema=EVENT_SCHEMA, orient="row")


def csr_of(frame: pl.DataFrame, users: int) -> tuple[np.ndarray, np.ndarray]:
    unique = frame.select(Col.USER_ID, Col.POST_ID).unique().sort(Col.USER_ID, Col.POST_ID)
    indptr = np.zeros(users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(unique[Col.USER_ID].to_numpy(), minlength=users))
    return indptr, unique[Col.POST_ID].to_numpy().astype(np.int16)


def cut_at(likes: pl.DataFrame, views: pl.DataFrame, moment: datetime) -> FeatureSet:
    """A feature set whose liked and viewed CSRs and latest like times hold the rows strictly before ``moment``."""
    liked = likes.filter(pl.col(Col.TIMESTAMP) < moment)
    viewed = views.filter(pl.col(Col.TIMESTAMP) < moment)
    latest = last_like_days(np.arange(USERS, dtype=np.int32), liked)
    return csr_feature_set(USERS, POSTS, csr_of(liked, USERS), csr_of(viewed, USERS), latest)


def rows_frame(rows: list[tuple[float, int, int]]) -> pl.DataFrame:
    return events(rows).select(Col.USER_ID, Col.POST_ID, Col.TIMESTAMP)


def liked_of(histories: RowHistories, row: int) -> list[int]:
    block = histories.block(histories.state_of_row[[row]])
    return block.liked_posts[block.liked_indptr[0] : block.liked_indptr[1]].tolist()


def viewed_of(histories: RowHistories, row: int) -> list[int]:
    block = histories.block(histories.state_of_row[[row]])
    return block.viewed_posts[block.viewed_indptr[0] : block.viewed_indptr[1]].tolist()


@pytest.fixture
def small() -> tuple[pl.DataFrame, pl.DataFrame]:
    """User 0 liked post 1 before the cutoff, then posts 2, 3, 4 inside the window at hours 1, 2, 3 (each seen
    just before); user 1 did nothing before or inside."""
    likes = events([(-5, 0, 1), (1, 0, 2), (2, 0, 3), (3, 0, 4)])
    views = events([(-6, 0, 1), (-6, 0, 9), (0.5, 0, 2), (1.5, 0, 3), (1.7, 0, 8), (2.5, 0, 4)])
    return likes, views


def test_a_state_holds_the_likes_strictly_before_the_row_and_never_its_own(small):
    likes, views = small
    base = cut_at(likes, views, CUTOFF)
    inside = pl.col(Col.TIMESTAMP) >= CUTOFF
    rows = rows_frame([(0.2, 0, 7), (1.5, 0, 3), (2.0, 0, 11), (2.5, 0, 4), (9.0, 0, 5), (1.0, 1, 6)])

    histories = row_histories(base, rows, likes.filter(inside), views.filter(inside))

    assert [liked_of(histories, row) for row in range(rows.height)] == [
        [1],
        [1, 2],  # the row of post 3 is its view at 1.5: post 3's like at 2.0 comes after
        [1, 2],  # a like at exactly the row's time is not before it
        [1, 2, 3],
        [1, 2, 3, 4],
        [],
    ]
    # Shown posts: the history's, then the window's views before the state's latest like.
    assert viewed_of(histories, 0) == [1, 9]
    assert viewed_of(histories, 3) == [1, 2, 3, 8, 9]
    assert histories.states == 5  # rows 1 and 2 share a state
    # What each row adds to the user's counts at the cutoff.
    assert histories.state_likes[histories.state_of_row].tolist() == [0, 1, 1, 2, 3, 0]
    assert histories.state_views[histories.state_of_row].tolist() == [0, 1, 1, 3, 4, 0]


def test_history_columns_equal_a_feature_set_cut_at_each_rows_latest_like():
    rng = np.random.default_rng(4)
    likes = events(
        [(float(rng.uniform(-200, 100)), int(u), int(rng.integers(POSTS))) for u in rng.integers(USERS, size=400)]
    )
    views = pl.concat(
        [
            likes.with_columns(pl.col(Col.TIMESTAMP) - timedelta(minutes=1)),
            events(
                [
                    (float(rng.uniform(-200, 100)), int(u), int(rng.integers(POSTS)))
                    for u in rng.integers(USERS, size=300)
                ]
            ),
        ]
    )
    base = cut_at(likes, views, CUTOFF)
    model = fit_collab(base, likes, PARAMS)
    inside = pl.col(Col.TIMESTAMP) >= CUTOFF
    rows = rows_frame(
        [(float(rng.uniform(0, 100)), int(rng.integers(USERS)), int(rng.integers(POSTS))) for _ in range(120)]
    )

    histories = row_histories(base, rows, likes.filter(inside), views.filter(inside))
    got = model.history_pair_matrix(histories, base.post_positions(rows[Col.POST_ID].to_numpy()))

    window_likes = likes.filter(inside)
    for row, (user, post, moment) in enumerate(rows.iter_rows()):
        earlier = window_likes.filter((pl.col(Col.USER_ID) == user) & (pl.col(Col.TIMESTAMP) < moment))
        start = earlier[Col.TIMESTAMP].max() if earlier.height else CUTOFF
        # The reference: likes before the row's moment, views before the state's start, the latest like's time.
        liked = likes.filter(pl.col(Col.TIMESTAMP) < moment)
        reference = csr_feature_set(
            USERS,
            POSTS,
            csr_of(liked, USERS),
            csr_of(views.filter(pl.col(Col.TIMESTAMP) < start), USERS),
            last_like_days(np.arange(USERS, dtype=np.int32), liked),
        )
        expected = model.pair_matrix(reference, np.array([user]), np.array([post]))
        np.testing.assert_allclose(got[row], expected[0], rtol=1e-4, atol=1e-5, err_msg=f"row {row}")


def test_without_window_events_every_row_reads_the_cutoffs_history(small):
    likes, views = small
    base = cut_at(likes, views, CUTOFF)
    model = fit_collab(base, likes, PARAMS)
    rows = rows_frame([(1.0, 0, 7), (2.0, 1, 6), (3.0, 0, 5)])
    no_events = likes.clear()

    histories = row_histories(base, rows, no_events, no_events)
    users, posts = base.user_positions(rows[Col.USER_ID].to_numpy()), base.post_positions(rows[Col.POST_ID].to_numpy())

    np.testing.assert_allclose(model.history_pair_matrix(histories, posts), model.pair_matrix(base, users, posts))


def test_a_lagged_row_reads_the_state_as_it_stood_up_to_that_long_before_it(small):
    likes, views = small
    base = cut_at(likes, views, CUTOFF)
    inside = pl.col(Col.TIMESTAMP) >= CUTOFF
    moments = [float(hours) for hours in np.linspace(0.1, 9.0, 60)]
    rows = rows_frame([(hours, 0, 7) for hours in moments])
    lag = timedelta(hours=2)

    lagged = row_histories(base, rows, likes.filter(inside), views.filter(inside), lag=lag, seed=3)
    at_row = row_histories(base, rows, likes.filter(inside), views.filter(inside))
    two_hours_before = row_histories(
        base, rows_frame([(h - 2.0, 0, 7) for h in moments]), likes.filter(inside), views.filter(inside)
    )

    counts = lagged.state_likes[lagged.state_of_row]
    assert (counts <= at_row.state_likes[at_row.state_of_row]).all()
    assert (counts >= two_hours_before.state_likes[two_hours_before.state_of_row]).all()
    assert counts.tolist() != at_row.state_likes[at_row.state_of_row].tolist()  # some rows did read an earlier state
    again = row_histories(base, rows, likes.filter(inside), views.filter(inside), lag=lag, seed=3)
    assert again.state_likes[again.state_of_row].tolist() == counts.tolist()  # the draws follow the seed


def test_rows_at_one_moment_share_their_lag_and_state(small):
    likes, views = small
    base = cut_at(likes, views, CUTOFF)
    inside = pl.col(Col.TIMESTAMP) >= CUTOFF
    moments = [float(hours) for hours in np.linspace(0.1, 9.0, 30)]
    # A liked post and two never-shown negatives at its moment, as the samples make them.
    rows = rows_frame([(hours, 0, post) for hours in moments for post in (7, 12, 13)])

    lagged = row_histories(base, rows, likes.filter(inside), views.filter(inside), lag=timedelta(hours=2), seed=3)

    by_moment = lagged.state_of_row.reshape(len(moments), 3)
    assert (by_moment == by_moment[:, :1]).all()
    unlagged = row_histories(base, rows, likes.filter(inside), views.filter(inside))
    counts = lagged.state_likes[lagged.state_of_row]
    assert counts.tolist() != unlagged.state_likes[unlagged.state_of_row].tolist()  # the lag did apply
