"""The evaluation's hold-out: who is evaluated, what counts as a hit, and how users are grouped for breakdowns.

As the course checker does: every user with at least one like in ``[as_of, as_of + window)`` is asked for 5 posts;
posts liked before ``as_of`` are never recommended, so they do not count as hits either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from common.ab import assign_group
from common.columns import Col

ACTIVITY_EDGES = (100, 300, 600)
# Whole days from a user's latest like to the cutoff: the same day, the same week, month, quarter, year, or older.
# A feed of short bursts is judged differently on a user still in one and on one back after months away.
LAST_LIKE_EDGES = (1, 7, 30, 90, 365)
_DAYS = "days_since_last_like"
# The topic bucket of users without a like before the cutoff (no favourite topic to name).
NO_LIKE_BEFORE = "no like before T"


@dataclass(frozen=True, slots=True)
class Holdout:
    """Evaluated users (sorted) and, per user, the posts liked in the window that were not liked before."""

    user_ids: npt.NDArray[np.int64]
    relevant: list[set[int]]

    @property
    def relevant_counts(self) -> npt.NDArray[np.int64]:
        """How many posts each user liked in the window."""
        return np.array([len(posts) for posts in self.relevant], dtype=np.int64)


def build_holdout(history_likes: pl.DataFrame, window_likes: pl.DataFrame) -> Holdout:
    """Users with a new like in the window and those likes, from like rows before and inside the window."""
    before = history_likes.select(Col.USER_ID, Col.POST_ID).unique()
    fresh = (
        window_likes.select(Col.USER_ID, Col.POST_ID).unique().join(before, on=[Col.USER_ID, Col.POST_ID], how="anti")
    )
    grouped = fresh.group_by(Col.USER_ID).agg(pl.col(Col.POST_ID)).sort(Col.USER_ID)
    return Holdout(
        user_ids=grouped[Col.USER_ID].to_numpy().astype(np.int64),
        relevant=[set(map(int, posts)) for posts in grouped[Col.POST_ID].to_list()],
    )


def shuffled_holdout(holdout: Holdout, post_ids: npt.NDArray[np.int64], seed: int) -> Holdout:
    """The leakage guard's hold-out: likes moved to other users and onto a random relabelling of the catalog.

    Nothing a recommender learned from data before the window can predict these, so every model should fall to
    the level of random; one that does not is reading the hold-out somewhere.
    """
    rng = np.random.default_rng(seed)
    relabel = dict(zip(post_ids.tolist(), rng.permutation(post_ids).tolist(), strict=True))
    moved = [holdout.relevant[i] for i in rng.permutation(len(holdout.relevant))]
    return Holdout(holdout.user_ids, [{relabel.get(post, post) for post in posts} for posts in moved])


def user_groups(
    views: pl.DataFrame,
    likes: pl.DataFrame,
    posts: pl.DataFrame,
    user_ids: npt.NDArray[np.int64],
    salt: str,
    control_percent: int,
    cutoff: datetime,
) -> dict[str, list[str]]:
    """Labels of each evaluated user for the breakdowns: A/B group, activity bucket, favourite topic and how long
    before the cutoff their latest like was.

    Args:
        views: (user_id, views) views per user before the cutoff.
        likes: (timestamp, user_id, post_id) likes before the cutoff.
        posts: The catalog, for the topic of each liked post.
        user_ids: The evaluated users, sorted.
        salt: The A/B split's salt.
        control_percent: The A/B split's control share.
        cutoff: The lists' as_of, which the latest like's age is counted back from.
    """
    frame = pl.DataFrame({Col.USER_ID: user_ids.astype(np.int32)})
    activity = views.join(frame, on=Col.USER_ID, how="right").with_columns(pl.col("views").fill_null(0))
    labelled = (
        activity.join(_favourite_topic(likes, posts), on=Col.USER_ID, how="left")
        .join(_days_since_last_like(likes, cutoff), on=Col.USER_ID, how="left")
        .sort(Col.USER_ID)
    )
    return {
        "exp_group": [assign_group(int(user), salt, control_percent) for user in labelled[Col.USER_ID]],
        "activity": [_bucket_label(int(count), ACTIVITY_EDGES, "views") for count in labelled["views"]],
        "topic": [str(topic or NO_LIKE_BEFORE) for topic in labelled[Col.TOPIC]],
        "last_like": [_last_like_label(days) for days in labelled[_DAYS].to_list()],
    }


def _days_since_last_like(likes: pl.DataFrame, cutoff: datetime) -> pl.DataFrame:
    """(user_id, whole days from the user's latest like to ``cutoff``)."""
    latest = likes.group_by(Col.USER_ID).agg(pl.col(Col.TIMESTAMP).max())
    return latest.select(Col.USER_ID, (pl.lit(cutoff) - pl.col(Col.TIMESTAMP)).dt.total_days().alias(_DAYS))


def _last_like_label(days: int | None) -> str:
    return NO_LIKE_BEFORE if days is None else _bucket_label(days, LAST_LIKE_EDGES, "days")


def _favourite_topic(likes: pl.DataFrame, posts: pl.DataFrame) -> pl.DataFrame:
    topics = likes.join(posts.select(Col.POST_ID, Col.TOPIC), on=Col.POST_ID)
    counts = topics.group_by(Col.USER_ID, Col.TOPIC).len(name="likes")
    ranked = counts.sort(["likes", Col.TOPIC], descending=[True, False])
    return ranked.unique(Col.USER_ID, keep="first", maintain_order=True).select(Col.USER_ID, Col.TOPIC)


def _bucket_label(value: int, edges: tuple[int, ...], unit: str) -> str:
    """``value``'s bucket between consecutive ``edges`` (from 0), e.g. ``0100-0299 views``; past the last, ``0600+``."""
    for low, high in zip((0, *edges), edges, strict=False):
        if value < high:
            return f"{low:04d}-{high - 1:04d} {unit}"
    return f"{edges[-1]:04d}+ {unit}"
