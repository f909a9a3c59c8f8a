"""The cutoffs of a build: features of each set are computed from rows before its cutoff, labels from rows after.

... history ...  | label window          | validation window |
features < label_start   labels in [label_start, valid_start)
                         features < valid_start   labels in [valid_start, as_of)

The windows are chosen from the likes, not the calendar: each is the most recent stretch of likes that holds a
share of them and enough distinct users, so that a feed of a few days, one of years, and one whose users are each
active on a few days only all give windows with labels for many users. A fixed number of days caught 19 users on
real data whose users are active a few days each.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

import polars as pl

from common.columns import Col
from common.errors import DataValidationError

log = logging.getLogger(__name__)

# Column of the running count of distinct users, most recent like first.
_USERS: Final = "users_so_far"


class Cutoff(StrEnum):
    """The feature sets of a build: training rows, validation rows, and scoring at as_of."""

    TRAIN = "train"
    VALID = "valid"
    SCORE = "score"


@dataclass(frozen=True, slots=True)
class Windows:
    """The temporal split's boundaries (label window, validation window) ending at ``as_of``."""

    label_start: datetime
    valid_start: datetime
    as_of: datetime

    def cutoff(self, which: Cutoff) -> datetime:
        """The time a feature set is cut at."""
        return {Cutoff.TRAIN: self.label_start, Cutoff.VALID: self.valid_start, Cutoff.SCORE: self.as_of}[which]

    def to_dict(self) -> dict[str, str]:
        """ISO strings, for metadata."""
        return {name: value.isoformat() for name, value in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    """How the windows are sized, in likes (every like before as_of counts).

    Short windows train best where users come back: a label far from its features' cutoff is predicted from stale
    history (on the popular world a label window of 25% of the likes instead of 10% took the time cut's hitrate@5
    from 0.85 to 0.77), so the shares are small and only grow to reach enough users. A hitrate@5 over 300 users has
    a standard error under 0.03. Where each user is active on a few days only, the recent likes come from few
    users, and a model trained on them alone is judged on everyone: the label window also grows until it holds
    ``label_user_share`` of the users who ever liked (see the attribute).

    Attributes:
        valid_share: The validation window holds at least this share of the likes ...
        label_share: ... and the label window, the one before it, at least this share ...
        valid_min_likes: ... and at least this many likes (a small feed's 5% is too few labels to train and judge
            a model on: on the tiny world the build's guard refused the model) ...
        label_min_likes: ... and the label window at least this many.
        min_users: Each grows further until this many distinct users liked in it (labels for many users, not many
            labels of a few heavy ones), or ``min_user_share`` of the users with a like if that is fewer ...
        min_user_share: ... so that on a small feed the windows do not swallow the history ...
        max_share: ... but both together hold at most this share, so features always have history before them.
        label_user_share: The label window also grows (within ``max_share``) until this share of the users with a
            like before as_of liked in it. On the bursty world 10% of the likes came from 14% of the users (425 of
            3,000); grown to 30% of them (22% of the likes), the per-user hold-out's hitrate@5 rose by 0.013 to
            0.031 on both seeds (bench/RESULTS.md, stop 25). Where users come back, 10% of the likes already hold
            nearly 90% of them and this changes nothing.
    """

    valid_share: float = 0.05
    label_share: float = 0.1
    valid_min_likes: int = 400
    label_min_likes: int = 800
    min_users: int = 300
    min_user_share: float = 0.1
    max_share: float = 0.6
    label_user_share: float = 0.3

    def __post_init__(self) -> None:
        shares = (self.valid_share, self.label_share, self.max_share)
        if min(shares) <= 0 or self.valid_share + self.label_share > self.max_share or self.max_share >= 1:
            raise ValueError(f"window shares must satisfy 0 < valid + label <= max < 1, got {shares}")
        if not 0 <= self.label_user_share <= 1:
            raise ValueError(f"label_user_share must be between 0 and 1, got {self.label_user_share}")

    def users_wanted(self, liking_users: int) -> int:
        """The distinct users each window grows to hold, given how many users liked anything."""
        return min(self.min_users, math.ceil(self.min_user_share * liking_users))

    def label_users_wanted(self, liking_users: int) -> int:
        """The distinct users the label window grows to hold: :meth:`users_wanted`, or ``label_user_share`` of the
        users with a like if that is more."""
        return max(self.users_wanted(liking_users), math.ceil(self.label_user_share * liking_users))

    def valid_cap(self) -> float:
        """The validation window's own ceiling: its part of ``max_share`` in proportion to its share."""
        return self.max_share * self.valid_share / (self.valid_share + self.label_share)


@dataclass(frozen=True, slots=True)
class WindowCount:
    """What one window holds, and which rule set its size.

    Attributes:
        likes: Like rows in it.
        users: Distinct users with a like in it.
        reason: ``share`` (its share or floor of likes held enough users), ``users`` (grown to reach them) or
            ``cap`` (stopped at the ceiling before reaching them).
    """

    likes: int
    users: int
    reason: str


@dataclass(frozen=True, slots=True)
class WindowChoice:
    """The windows chosen, with what each holds and what the history before them holds."""

    windows: Windows
    label: WindowCount
    valid: WindowCount
    history: WindowCount

    def rows(self) -> dict[str, int]:
        """Counts for the artifact's metadata."""
        parts = {"label": self.label, "valid": self.valid, "history": self.history}
        return {f"{name}_{key}": getattr(part, key) for name, part in parts.items() for key in ("likes", "users")}

    def describe(self) -> str:
        """One log line: each window's bounds, likes, users and the rule that sized it."""
        w = self.windows
        return (
            f"history < {w.label_start:%Y-%m-%d %H:%M}: likes={self.history.likes} users={self.history.users}; "
            f"label [{w.label_start:%Y-%m-%d %H:%M}, {w.valid_start:%Y-%m-%d %H:%M}): likes={self.label.likes} "
            f"users={self.label.users} sized_by={self.label.reason}; "
            f"validation [{w.valid_start:%Y-%m-%d %H:%M}, {w.as_of:%Y-%m-%d %H:%M}): likes={self.valid.likes} "
            f"users={self.valid.users} sized_by={self.valid.reason}"
        )


def _recent_first(likes: pl.DataFrame) -> pl.DataFrame:
    """Like times, most recent first, with the number of distinct users among the likes up to each row."""
    return (
        likes.select(Col.TIMESTAMP, Col.USER_ID)
        .sort(Col.TIMESTAMP, descending=True)
        .with_columns(pl.col(Col.USER_ID).is_first_distinct().cum_sum().alias(_USERS))
    )


def _window_size(recent: pl.DataFrame, least: int, cap: int, min_users: int) -> tuple[int, str]:
    """How many of the most recent likes the window takes: ``least`` or more to reach ``min_users``, at most
    ``cap``, and never fewer than one."""
    cap = max(1, min(cap, recent.height))
    least = min(max(1, least), cap)
    if int(recent[_USERS][least - 1]) >= min_users:
        return least, "share"
    reached = recent[_USERS].search_sorted(min_users, side="left")
    return (int(reached) + 1, "users") if reached < cap else (cap, "cap")


def _take(recent: pl.DataFrame, size: int, reason: str) -> tuple[datetime, WindowCount, pl.DataFrame]:
    """The window of the first ``size`` rows: its start (ties at that time join it), its counts and the rest."""
    start: datetime = recent[Col.TIMESTAMP][size - 1]
    inside = recent.filter(pl.col(Col.TIMESTAMP) >= start)
    count = WindowCount(inside.height, inside[Col.USER_ID].n_unique(), reason)
    return start, count, _recent_first(recent.filter(pl.col(Col.TIMESTAMP) < start))


def choose_windows(likes: pl.DataFrame, as_of: datetime, policy: WindowPolicy) -> WindowChoice:
    """The label and validation windows for the likes before ``as_of``, sized by ``policy`` (see the module).

    Args:
        likes: Like rows (timestamp, user_id, ...), all before ``as_of``.
        as_of: The end of the validation window.
        policy: Shares and user counts the windows must hold.

    Raises:
        DataValidationError: Fewer than three likes: no history, label and validation to split them into.
    """
    total = likes.height
    if total < 3:
        raise DataValidationError(f"{total} likes before {as_of:%Y-%m-%d %H:%M}: too few to train on; load more data")
    recent = _recent_first(likes)
    liking_users = int(recent[_USERS][-1])
    min_users = policy.users_wanted(liking_users)
    least = max(math.ceil(policy.valid_share * total), policy.valid_min_likes)
    size, reason = _window_size(recent, least, math.floor(policy.valid_cap() * total), min_users)
    valid_start, valid, before = _take(recent, size, reason)
    # The label window may not reach the first like: features need some history.
    cap = min(math.floor(policy.max_share * total) - valid.likes, before.height - 1)
    least = max(math.ceil(policy.label_share * total), policy.label_min_likes)
    size, reason = _window_size(before, least, cap, policy.label_users_wanted(liking_users))
    label_start, label, history = _take(before, size, reason)
    kept = WindowCount(history.height, history[Col.USER_ID].n_unique(), "rest")
    return WindowChoice(Windows(label_start, valid_start, as_of), label, valid, kept)
