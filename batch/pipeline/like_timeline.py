"""When each post was liked, to score posts by how liked they were at the user's own time, not at the cutoff.

A user's "time" is the latest peak among the posts they liked (a post's peak: the median day of its likes). Two
columns follow from it, for every (user, post):

- ``collab_local_likes``: the post's likes within :data:`HALF_WIDTH_DAYS` days of the user's time;
- ``collab_peak_gap_days``: the post's peak minus the user's time, in days (NaN for a user or post without a like).

Popularity at the cutoff says what is liked now; on data whose users are active a few days each over a long span,
most users stopped long ago, and what they go on to like is what was liked around their own days. Defined relative
to each user, the same columns describe a user active yesterday (their time is about the cutoff) and one active a
year ago, so a model trained on recent users carries over to old ones. Both come from the likes before the cutoff
and each user's liked posts, so a shard or a one-user rescore needs only this post side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.pipeline.features import FeatureSet, FloatArray
from batch.ranking.positions import IndexArray, csr_entries, positions_or_last
from common.columns import Col

SECONDS_PER_DAY: Final = 86_400.0
HALF_WIDTH_DAYS: Final = 3
LOCAL_LIKES: Final = "collab_local_likes"
PEAK_GAP_DAYS: Final = "collab_peak_gap_days"
TIMELINE_NAMES: Final = (LOCAL_LIKES, PEAK_GAP_DAYS)


@dataclass(frozen=True, slots=True)
class LikeTimeline:
    """Each post's likes by day before the cutoff.

    Attributes:
        cumulative: (days + 1, posts) float32: row ``d`` holds each post's likes on days before ``d`` (day 0 is
            the day of the first like).
        peak_day: (posts,) float32 median day of each post's likes; NaN for a post without a like.
    """

    cumulative: FloatArray
    peak_day: FloatArray

    @property
    def days(self) -> int:
        """Days covered."""
        return int(self.cumulative.shape[0]) - 1

    def user_days(self, features: FeatureSet, users: IndexArray) -> FloatArray:
        """Each user's time: the latest peak among the posts they liked before the cutoff; NaN without a like."""
        owners, posts = csr_entries(features.liked_indptr, features.liked_posts, users)
        days = np.full(users.size, np.nan, dtype=np.float32)
        np.fmax.at(days, owners, self.peak_day[posts.astype(np.int64)])
        return days

    def write_columns(self, features: FeatureSet, users: IndexArray, local: FloatArray, gap: FloatArray) -> None:
        """Write both columns' (users x posts) values into ``local`` and ``gap``."""
        days = self.user_days(features, users)
        known = np.isfinite(days)
        centre = np.where(known, np.rint(days), 0).astype(np.int64)
        low = np.clip(centre - HALF_WIDTH_DAYS, 0, self.days)
        high = np.clip(centre + HALF_WIDTH_DAYS + 1, 0, self.days)
        np.subtract(self.cumulative[high], self.cumulative[low], out=local)
        local[~known] = 0.0
        np.subtract(self.peak_day[None, :], days[:, None], out=gap)


def fit_timeline(likes: pl.DataFrame, post_ids: npt.NDArray[np.int32], cutoff: datetime) -> LikeTimeline:
    """The timeline of the likes (timestamp, user_id, post_id) before ``cutoff`` over the sorted ``post_ids``."""
    before = likes.filter(pl.col(Col.TIMESTAMP) < cutoff)
    if before.height == 0:
        return LikeTimeline(np.zeros((1, post_ids.size), np.float32), np.full(post_ids.size, np.nan, np.float32))
    first = before[Col.TIMESTAMP].min()
    seconds = (pl.col(Col.TIMESTAMP) - pl.lit(first)).dt.total_seconds()
    days = before.select((seconds // SECONDS_PER_DAY).cast(pl.Int64)).to_series().to_numpy()
    positions, known = positions_or_last(post_ids, before[Col.POST_ID].to_numpy())
    days, positions = days[known], positions[known]
    span = int(days.max()) + 1
    counts = np.zeros((span + 1, post_ids.size), dtype=np.float32)
    np.add.at(counts, (days + 1, positions), 1.0)
    peaks = pl.DataFrame({"post": positions, "day": days}).group_by("post").agg(pl.col("day").median())
    peak_day = np.full(post_ids.size, np.nan, dtype=np.float32)
    peak_day[peaks["post"].to_numpy()] = peaks["day"].to_numpy()
    return LikeTimeline(np.cumsum(counts, axis=0, dtype=np.float32), peak_day)
