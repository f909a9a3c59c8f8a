"""Each training row's history at its own moment: the user's likes and views before the row, not only before the
label window.

A training row's features are cut at the label window's start, but the row itself happens inside the window, after
whatever the user did there earlier. Scoring sees a user's history up to as_of, and the lists are judged on what the
user does next. On a feed whose users are active a few days each, the two differ most: on the bursty world, 89% of
the label window's likes came from users with no like before the window, who had liked 21 posts (median) inside it
before the labelled one. With the cutoff's history alone, their collaborative scores are all zero and the model
learns popularity; the users it is judged on (median 31 likes, the last one the same day) are the opposite case.

So the collaborative columns of a training row read a *state*: the user's likes before the window plus their first
``k`` likes inside it, ``k`` being how many fell strictly before the row's time, and their views before the time of
the ``k``-th. The post side (kNN, EASE, ALS factors) stays the cutoff's, fitted on likes before the window only, so
no row reads a weight learnt from its own label. A row's own like comes at or after its view, which is the row's
time, and is therefore never in its state. The state's window likes and views are also added to the user's like and
view counts (``batch.pipeline.train.RowColumns``); the per-topic counts and the embedding features stay the cutoff's.
The state's latest like (the ``k``-th window like, or the user's last before the window) is the moment its era
popularity is read at (``batch.pipeline.era_popularity``).

Lists that are used a long time after they are made (the time cut's 90-day window, a feed refreshed weekly) are
judged on likes days or weeks after the history they read. For them each row may read its state ``lag`` before its
own moment, the lag drawn uniformly once per user and moment (``TrainParams.history_lag``), so the trees also learn
how much a history says about likes that come later. Drawn once per moment, the lag keeps a liked row and the
never-shown negatives that take its time (``batch.pipeline.samples``) on one state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Protocol

import numpy as np
import polars as pl

from batch.pipeline.features import MICROSECONDS_PER_DAY, DayArray, FeatureSet
from batch.ranking.positions import IndexArray, PositionArray
from common.columns import Col

# Columns of the frames built here.
_USER: Final = "user_position"
_LIKES: Final = "likes_before"
_START: Final = "state_start"
_VIEWS: Final = "views_before"
_STATE: Final = "state"


class ShownRows(Protocol):
    """Per-row CSRs of liked and shown post positions: a feature set's users, or training rows' states."""

    @property
    def liked_indptr(self) -> IndexArray: ...

    @property
    def liked_posts(self) -> PositionArray: ...

    @property
    def viewed_indptr(self) -> IndexArray: ...

    @property
    def viewed_posts(self) -> PositionArray: ...

    @property
    def last_like_days(self) -> DayArray: ...


@dataclass(frozen=True, slots=True)
class ShownCsr:
    """Liked and shown post positions of some rows (e.g. a block of states), each CSR sorted within a row, and each
    row's latest like time (days since the epoch; NaN without a like)."""

    liked_indptr: IndexArray
    liked_posts: PositionArray
    viewed_indptr: IndexArray
    viewed_posts: PositionArray
    last_like_days: DayArray


@dataclass(frozen=True, slots=True)
class UserEvents:
    """Events of the window (likes or views) sorted by user position, then time: per user, a slice of the arrays.

    Attributes:
        indptr: (users + 1) start of each user's events.
        posts: Post position of each event.
        times: Its time, in microseconds since the epoch.
    """

    indptr: IndexArray
    posts: PositionArray
    times: IndexArray


@dataclass(frozen=True, slots=True)
class RowHistories:
    """The states of a set of training rows, and what each state's CSR rows are built from.

    Attributes:
        base: The feature set cut at the window's start: each user's history before it.
        state_of_row: Each row's state.
        state_users: Each state's user position in ``base``.
        state_likes: How many of its user's window likes the state holds (the first ones).
        state_views: How many of its user's window views the state holds (the first ones): those before the time
            of its latest like, or none when it holds no window like.
        likes: The window's likes.
        views: The window's views.
    """

    base: FeatureSet
    state_of_row: IndexArray
    state_users: IndexArray
    state_likes: IndexArray
    state_views: IndexArray
    likes: UserEvents
    views: UserEvents

    @property
    def states(self) -> int:
        """Number of distinct states."""
        return int(self.state_users.size)

    def block(self, states: IndexArray) -> ShownCsr:
        """The CSR rows of the given states, in that order: history before the window, then the window's part."""
        base = self.base
        liked: list[PositionArray] = []
        viewed: list[PositionArray] = []
        last_like_days = np.empty(states.size, dtype=np.float64)
        for slot, state in enumerate(states.tolist()):
            user = int(self.state_users[state])
            first_like = int(self.likes.indptr[user])
            first_view = int(self.views.indptr[user])
            window_likes = int(self.state_likes[state])
            last_like_days[slot] = (
                self.likes.times[first_like + window_likes - 1] / MICROSECONDS_PER_DAY
                if window_likes
                else base.last_like_days[user]
            )
            liked.append(
                _union(
                    base.liked_posts[base.liked_indptr[user] : base.liked_indptr[user + 1]],
                    self.likes.posts[first_like : first_like + window_likes],
                )
            )
            viewed.append(
                _union(
                    base.viewed_posts[base.viewed_indptr[user] : base.viewed_indptr[user + 1]],
                    self.views.posts[first_view : first_view + int(self.state_views[state])],
                )
            )
        liked_indptr, liked_posts = _stack(liked, base.liked_posts.dtype)
        viewed_indptr, viewed_posts = _stack(viewed, base.viewed_posts.dtype)
        return ShownCsr(liked_indptr, liked_posts, viewed_indptr, viewed_posts, last_like_days)


def _union(before: PositionArray, inside: PositionArray) -> PositionArray:
    """Sorted distinct positions of both (a post liked or shown again in the window counts once)."""
    return np.unique(np.concatenate([before, inside.astype(before.dtype, copy=False)]))


def _stack(rows: list[PositionArray], dtype: np.dtype[np.signedinteger]) -> tuple[IndexArray, PositionArray]:
    lengths = np.fromiter((row.size for row in rows), dtype=np.int64, count=len(rows))
    indptr = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)])
    posts = np.concatenate(rows).astype(dtype, copy=False) if rows else np.zeros(0, dtype=dtype)
    return indptr, posts


def _microseconds() -> pl.Expr:
    return pl.col(Col.TIMESTAMP).cast(pl.Datetime("us")).dt.epoch("us")


def user_events(base: FeatureSet, events: pl.DataFrame) -> UserEvents:
    """The (timestamp, user_id, post_id) rows of a window as :class:`UserEvents` over ``base``'s users and posts."""
    ordered = events.select(
        pl.Series(_USER, base.user_positions(events[Col.USER_ID].to_numpy())),
        pl.Series(Col.POST_ID, base.post_positions(events[Col.POST_ID].to_numpy())),
        _microseconds().alias(Col.TIMESTAMP),
    ).sort(_USER, Col.TIMESTAMP, Col.POST_ID)
    counts = np.bincount(ordered[_USER].to_numpy(), minlength=base.user_ids.size)
    indptr = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts)])
    posts = ordered[Col.POST_ID].to_numpy().astype(base.liked_posts.dtype)
    return UserEvents(indptr, posts, ordered[Col.TIMESTAMP].to_numpy().astype(np.int64))


def row_histories(
    base: FeatureSet,
    rows: pl.DataFrame,
    window_likes: pl.DataFrame,
    window_views: pl.DataFrame,
    lag: timedelta = timedelta(0),
    seed: int = 0,
) -> RowHistories:
    """The state of each training row (see the module).

    Args:
        base: The feature set cut at the window's start.
        rows: The training rows (user_id, post_id, timestamp, ...), in their order.
        window_likes: Like rows (timestamp, user_id, post_id) inside the window; other users' are ignored.
        window_views: View rows (timestamp, user_id, post_id) inside the window.
        lag: Each row reads the state as it stood a while before the row, drawn uniformly from ``[0, lag)`` once
            per user and moment (never before the window's start): how long after a list is made its likes come.
        seed: Seed of those draws.
    """
    cutoff_us = int(pl.Series([base.cutoff]).cast(pl.Datetime("us")).dt.epoch("us")[0])
    mine = pl.col(Col.USER_ID).is_in(rows[Col.USER_ID].unique().implode())
    likes = user_events(base, window_likes.filter(mine))
    views = user_events(base, window_views.filter(mine))
    moments = rows.select(
        pl.int_range(pl.len()).alias("row"),
        pl.Series(_USER, base.user_positions(rows[Col.USER_ID].to_numpy())),
        _microseconds().alias(Col.TIMESTAMP),
    )
    # One lag per (user, moment), in (user, moment) order: a liked row and the negatives at its time read one state.
    moment = pl.struct(_USER, Col.TIMESTAMP).rank("dense").cast(pl.Int64) - 1
    moment_ids = moments.select(moment).to_series()
    lags = pl.Series(_lags(moment_ids.n_unique(), lag, seed)).gather(moment_ids)
    moments = moments.with_columns(pl.col(Col.TIMESTAMP) - lags).sort(Col.TIMESTAMP)
    # The latest window like strictly before each row: how many likes the state holds, and when it starts ...
    states = _count_before(moments, likes, _LIKES).with_columns(pl.col(_START).fill_null(cutoff_us))
    state_key = pl.col(_USER) * (likes.posts.size + 1) + pl.col(_LIKES)
    states = states.with_columns(state_key.rank("dense").cast(pl.Int64).sub(1).alias(_STATE)).sort("row")
    # ... and the user's window views before that start.
    distinct = _count_before(
        states.unique(_STATE).select(_STATE, _USER, _LIKES, pl.col(_START).alias(Col.TIMESTAMP)).sort(Col.TIMESTAMP),
        views,
        _VIEWS,
    ).sort(_STATE)
    return RowHistories(
        base=base,
        state_of_row=states[_STATE].to_numpy(),
        state_users=distinct[_USER].to_numpy().astype(np.int64),
        state_likes=distinct[_LIKES].to_numpy().astype(np.int64),
        state_views=distinct[_VIEWS].to_numpy().astype(np.int64),
        likes=likes,
        views=views,
    )


def _lags(rows: int, lag: timedelta, seed: int) -> IndexArray:
    """``rows`` lags in microseconds, uniform in ``[0, lag)``."""
    span = lag // timedelta(microseconds=1)
    if span <= 0:
        return np.zeros(rows, dtype=np.int64)
    return np.random.default_rng(seed).integers(0, span, size=rows, dtype=np.int64)


def _count_before(moments: pl.DataFrame, events: UserEvents, name: str) -> pl.DataFrame:
    """``moments`` (user position, timestamp in microseconds, sorted by it) with ``name``: how many of the user's
    events came strictly before each, and ``state_start``: the time of the last of them (null when none)."""
    users = np.repeat(np.arange(events.indptr.size - 1), np.diff(events.indptr))
    counted = pl.DataFrame({_USER: users, Col.TIMESTAMP: events.times}).with_columns(
        (pl.int_range(pl.len()).over(_USER) + 1).alias(name), pl.col(Col.TIMESTAMP).alias(_START)
    )
    # Both sides are sorted by time, hence within each user too (polars cannot check that when grouping).
    return moments.join_asof(
        counted.sort(Col.TIMESTAMP),
        on=Col.TIMESTAMP,
        by=_USER,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
        suffix="_event",
    ).with_columns(pl.col(name).fill_null(0))
