"""The time protocol's hold-out window, chosen from the likes when it is not given.

A fixed week is what the course's checker holds out, and where users come back it holds most of them. Where each
user is active on a few days only, a week holds few users: on the bursty world (small scale, seed 42) 214 of the
2,998 users with a like, so a hitrate@5 there has a 95% interval about 0.13 wide and cannot tell two recommenders
apart. The window therefore starts at a week and grows by whole days until it holds enough users who liked in it,
as the build's own windows do (:mod:`batch.pipeline.cutoffs`), but never past a share of the feed's span, so the
history before it stays the larger part. ``postrec evaluate --window`` fixes it instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import polars as pl
from sqlalchemy.engine import Engine

from batch.pipeline.extract import copy_query
from common.columns import Col, Table
from common.errors import DataValidationError

_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class HoldoutWindowPolicy:
    """How the time protocol's window is sized when none is given.

    Attributes:
        least_days: The window is at least this many days (the checker's week) ...
        min_users: ... and grows by whole days until this many users liked in it ...
        min_user_share: ... or this share of the users with a like, if that is fewer (a small feed) ...
        max_span_share: ... but never beyond this share of the time from the first like to the window's end.
    """

    least_days: int = 7
    min_users: int = 1000
    min_user_share: float = 1 / 3
    max_span_share: float = 0.25

    def __post_init__(self) -> None:
        if self.least_days < 1 or self.min_users < 1:
            raise ValueError(f"least_days and min_users must be >= 1, got {self.least_days}, {self.min_users}")
        if not 0 < self.min_user_share <= 1 or not 0 < self.max_span_share < 1:
            raise ValueError(
                "min_user_share must be in (0, 1] and max_span_share in (0, 1), got "
                f"{self.min_user_share}, {self.max_span_share}"
            )

    def users_wanted(self, liking_users: int) -> int:
        """The users the window grows to hold, given how many users liked anything."""
        return min(self.min_users, math.ceil(self.min_user_share * liking_users))


@dataclass(frozen=True, slots=True)
class HoldoutWindow:
    """The window held out after T, and why it is that long.

    Attributes:
        start: T, the cutoff: rankings use data before it.
        length: The window's length; likes in ``[start, start + length)`` are held out.
        users: Users with a like in the window.
        reason: ``given`` (``--window``), ``least`` (the shortest window held enough users), ``users`` (grown
            until it did) or ``cap`` (stopped at the share of the span before it did).
    """

    start: datetime
    length: timedelta
    users: int
    reason: str

    def describe(self) -> str:
        """One log line."""
        return (
            f"hold-out window [{self.start:%Y-%m-%d %H:%M}, {self.start + self.length:%Y-%m-%d %H:%M}): "
            f"{self.length / _DAY:g} days, {self.users} users with a like, sized_by={self.reason}"
        )


def choose_holdout_window(engine: Engine, end: datetime, policy: HoldoutWindowPolicy) -> HoldoutWindow:
    """The window ending at ``end`` (the data's end): at least ``policy.least_days`` long, grown by whole days until
    it holds :meth:`HoldoutWindowPolicy.users_wanted` users with a like, at most ``max_span_share`` of the span.

    Raises:
        DataValidationError: No like before ``end``.
    """
    latest = _latest_like_per_user(engine, end)
    if latest.height == 0:
        raise DataValidationError(f"no like before {end:%Y-%m-%d %H:%M}: nothing to hold out; load more data")
    span = end - _first_like(engine)
    cap = max(policy.least_days, math.floor(policy.max_span_share * span / _DAY))
    wanted = policy.users_wanted(latest.height)
    # The wanted-th most recent "latest like" is the oldest moment the window must reach back to.
    oldest: datetime = latest[Col.TIMESTAMP].sort(descending=True)[wanted - 1]
    days = max(policy.least_days, math.ceil((end - oldest) / _DAY))
    reason = "least" if days == policy.least_days else "users"
    if days > cap:
        days, reason = cap, "cap"
    length = timedelta(days=days)
    users = int((latest[Col.TIMESTAMP] >= end - length).sum())
    return HoldoutWindow(end - length, length, users, reason)


def given_window(engine: Engine, start: datetime, length: timedelta) -> HoldoutWindow:
    """A window fixed by the caller, with the users it holds."""
    sql = (
        f"SELECT count(DISTINCT {Col.USER_ID}) AS users FROM {Table.FEED} WHERE {Col.ACTION} = 'like' "
        f'AND "{Col.TIMESTAMP}" >= %(start)s AND "{Col.TIMESTAMP}" < %(end)s'
    )
    counted = copy_query(engine, sql, {"users": pl.Int64()}, {"start": start, "end": start + length})
    return HoldoutWindow(start, length, int(counted["users"][0]), "given")


def _latest_like_per_user(engine: Engine, end: datetime) -> pl.DataFrame:
    sql = (
        f'SELECT {Col.USER_ID}, max("{Col.TIMESTAMP}") AS "{Col.TIMESTAMP}" FROM {Table.FEED} '
        f"WHERE {Col.ACTION} = 'like' AND \"{Col.TIMESTAMP}\" < %(end)s GROUP BY {Col.USER_ID}"
    )
    return copy_query(engine, sql, {Col.USER_ID: pl.Int32(), Col.TIMESTAMP: pl.Datetime("us")}, {"end": end})


def _first_like(engine: Engine) -> datetime:
    sql = f'SELECT min("{Col.TIMESTAMP}") AS "{Col.TIMESTAMP}" FROM {Table.FEED} WHERE {Col.ACTION} = \'like\''
    first: datetime = copy_query(engine, sql, {Col.TIMESTAMP: pl.Datetime("us")}, {})[Col.TIMESTAMP][0]
    return first
