"""Each post's recency-weighted like count as of any moment: the popularity of the time a user was last active.

``collab_recent_popularity`` reads the posts' likes at the cutoff. A user whose next views come right after their
own last visit, which is what a per-user hold-out asks about and what a feed of short bursts is made of, was shown
what was popular *then*, possibly months before the cutoff. This reads the same weighted count at the user's latest
like: each like counts ``0.5 ** (age / half life)``, its age taken at that moment, and only likes strictly before a
grid point at or before the moment count, so a state's own later likes (a training row's label) never do.

The counts are kept at the points of a time grid (at most :data:`MAX_GRID_POINTS`, so a feed of years costs the same
memory as one of weeks), each point's row carried forward from the previous one by the decay over a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.pipeline.features import MICROSECONDS_PER_DAY, DayArray, FloatArray
from batch.ranking.positions import positions_or_last
from common.columns import Col

# Grid points kept per cutoff: 1,025 x 7,023 posts of float32 is 29 MB.
MAX_GRID_POINTS: Final = 1024
HOURS_PER_DAY: Final = 24.0
MICROSECONDS_PER_HOUR: Final = MICROSECONDS_PER_DAY // 24


@dataclass(frozen=True, slots=True)
class EraPopularity:
    """Weighted like counts of every post at the points of a time grid.

    Attributes:
        origin_day: The grid's first point, in days since the epoch (no like is before it).
        step_days: Days between points (a whole number of hours).
        half_life_days: Age at which a like counts half.
        counts: (points x posts) float32: at point ``i``, the likes strictly before it, each weighted by its age there.
    """

    origin_day: float
    step_days: float
    half_life_days: float
    counts: FloatArray

    def at(self, days: DayArray) -> FloatArray:
        """(moments x posts) float32 weighted counts as of each moment (days since the epoch); NaN rows for NaN.

        A moment reads the last grid point at or before it, decayed over the time since; a moment after the last
        point reads the last point, which holds every like.
        """
        out = np.empty((days.size, self.counts.shape[1]), dtype=np.float32)
        self.write_at(days, out)
        return out

    def write_at(self, days: DayArray, out: FloatArray) -> None:
        """:meth:`at` into ``out`` (moments x posts), e.g. a column of a scoring block."""
        known = ~np.isnan(days)
        steps = np.where(known, (days - self.origin_day) / self.step_days, 0.0)
        points = np.clip(np.floor(steps), 0, self.counts.shape[0] - 1).astype(np.int64)
        since = np.maximum(days - (self.origin_day + points * self.step_days), 0.0)
        decay = np.where(known, np.power(0.5, since / self.half_life_days), np.nan).astype(np.float32)
        np.multiply(self.counts[points], decay[:, None], out=out)


def grid_step_days(first_day: float, last_day: float) -> float:
    """Whole hours per step, the fewest that keep the grid within :data:`MAX_GRID_POINTS` points (at least 1)."""
    hours = math.ceil(max(last_day - first_day, 0.0) * HOURS_PER_DAY / (MAX_GRID_POINTS - 1))
    return max(hours, 1) / HOURS_PER_DAY


def fit_era_popularity(likes: pl.DataFrame, post_ids: npt.NDArray[np.int32], half_life_days: float) -> EraPopularity:
    """The weighted counts of ``likes`` (timestamp, post_id) over ``post_ids`` (sorted) at every grid point.

    The grid spans every like, so whoever reads it decides which likes are before their moment; the grid's last
    point is after the latest like.
    """
    times = likes[Col.TIMESTAMP].dt.epoch("us").to_numpy()
    positions, known = positions_or_last(post_ids, likes[Col.POST_ID].to_numpy())
    times, positions = times[known].astype(np.int64), positions[known]
    if times.size == 0:
        return EraPopularity(0.0, 1.0, half_life_days, np.zeros((1, post_ids.size), dtype=np.float32))
    # In whole microseconds, so that a like exactly on a grid point is never counted at that point.
    origin = int(times.min()) // MICROSECONDS_PER_HOUR * MICROSECONDS_PER_HOUR
    step = round(
        grid_step_days(origin / MICROSECONDS_PER_DAY, times.max() / MICROSECONDS_PER_DAY) * MICROSECONDS_PER_DAY
    )
    points = (int(times.max()) - origin) // step + 2
    # A like in [point i - 1, point i) first counts at point i, weighted by its age there.
    first_point = (times - origin) // step + 1
    ages = (origin + first_point * step - times) / MICROSECONDS_PER_DAY
    weights = np.power(0.5, ages / half_life_days)
    added = np.bincount(first_point * post_ids.size + positions, weights=weights, minlength=points * post_ids.size)
    counts = added.reshape(points, post_ids.size)
    carry = 0.5 ** (step / MICROSECONDS_PER_DAY / half_life_days)
    for point in range(1, points):
        counts[point] += carry * counts[point - 1]
    return EraPopularity(
        origin / MICROSECONDS_PER_DAY, step / MICROSECONDS_PER_DAY, half_life_days, counts.astype(np.float32)
    )
