"""The world's ground truth and the oracle: the exact model the feed was generated from.

How the feed is generated (see :mod:`batch.world_feed`):

* A user draws ``draws`` candidate views. Each picks a day (global day weights), an hour (the daily shape), a
  sub-topic (the user's exposure mix: the catalogue's share blended with the user's own tastes) and a post of
  that sub-topic (popularity x a bump around the post's trend peak day, renormalised per day).
* Only the first draw of a (user, post) pair is kept (the feed does not show a post twice), and a random
  ``keep`` share of those pairs survives; 4% extra re-shows of already seen posts are added, never liked.
* A first view is liked with ``sigmoid(month offset + hour effect + user bias + topic taste + sub-topic taste +
  post quality)``; month offsets were solved so the like rate per month matches the real one.

:func:`oracle_scores` turns this into the probability that a user likes a post within a time window: the chance
that the post's first view falls in the window times the like probability there. Ranking by it is the ceiling
that no model can pass in expectation; pass ``seen_before`` (the pairs viewed before ``start``) to condition on
the realised history too, which is the exact ceiling for an evaluation that knows the feed up to ``start``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from batch.world_dist import FloatArray, IntArray, sigmoid
from batch.world_facts import FIRST_MINUTE, MONTH_OF_DAY_STARTS, PERIOD_DAYS, PERIOD_START
from common.errors import DataValidationError

_LOGIT_GRID = np.linspace(-20.0, 12.0, 6401)


@dataclass(frozen=True, slots=True)
class WorldParams:
    """Global parameters of one generated world (saved as JSON with the truth).

    Attributes:
        scale: The scale name it was generated at.
        seed: Its random seed.
        month_offsets: Like logit offset in October, November, December (solved by calibration).
        exposure_taste_mix: Share of a user's exposure that follows their tastes (the rest follows the catalogue).
        exposure_taste_power: How sharply the taste-driven exposure concentrates on liked sub-topics.
        trend_amplitude: Exposure multiplier at a post's trend peak, on top of its base popularity.
        day_weights: Share of all views on each day of the period (sums to 1).
        hour_view_shape: Share of a day's views in each hour 06..23 (sums to 1).
        hour_like_effect: Like logit added in each hour 06..23.
        subtopic_topics: Topic index (into ``common.columns.TOPICS``) of each sub-topic.
        subtopic_names: Name of each sub-topic.
    """

    scale: str
    seed: int
    month_offsets: tuple[float, ...]
    exposure_taste_mix: float
    exposure_taste_power: float
    trend_amplitude: float
    day_weights: tuple[float, ...]
    hour_view_shape: tuple[float, ...]
    hour_like_effect: tuple[float, ...]
    subtopic_topics: tuple[int, ...]
    subtopic_names: tuple[str, ...]

    def to_json(self) -> str:
        """The parameters as a JSON object."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorldParams:
        """Parse :meth:`to_json`'s output."""
        raw = json.loads(text)
        return cls(
            scale=str(raw["scale"]),
            seed=int(raw["seed"]),
            month_offsets=tuple(float(v) for v in raw["month_offsets"]),
            exposure_taste_mix=float(raw["exposure_taste_mix"]),
            exposure_taste_power=float(raw["exposure_taste_power"]),
            trend_amplitude=float(raw["trend_amplitude"]),
            day_weights=tuple(float(v) for v in raw["day_weights"]),
            hour_view_shape=tuple(float(v) for v in raw["hour_view_shape"]),
            hour_like_effect=tuple(float(v) for v in raw["hour_like_effect"]),
            subtopic_topics=tuple(int(v) for v in raw["subtopic_topics"]),
            subtopic_names=tuple(str(v) for v in raw["subtopic_names"]),
        )


@dataclass(frozen=True, slots=True)
class WorldTruth:
    """Everything the feed was generated from. User and post arrays are sorted by id.

    Attributes:
        params: The global parameters.
        user_id: User ids, ascending.
        user_draws: Candidate views drawn per user over the period (before removing repeats).
        user_keep: Share of the user's distinct drawn posts kept in the feed.
        user_bias: Like logit of the user.
        user_topic_taste: Like logit per user and topic (``common.columns.TOPICS`` order).
        user_subtopic_taste: Like logit per user and sub-topic.
        post_id: Post ids, ascending.
        post_topic: Topic index of each post.
        post_subtopic: Sub-topic index of each post.
        post_quality: Like logit of the post.
        post_popularity: Base exposure weight of the post within its sub-topic.
        post_peak_day: Day (0 = 2021-10-01, may lie outside the period) when the post trends most.
        post_trend_width: Standard deviation of the trend bump, in days.
        post_shown: Whether the feed ever shows the post.
    """

    params: WorldParams
    user_id: IntArray
    user_draws: FloatArray
    user_keep: FloatArray
    user_bias: FloatArray
    user_topic_taste: FloatArray
    user_subtopic_taste: FloatArray
    post_id: IntArray
    post_topic: IntArray
    post_subtopic: IntArray
    post_quality: FloatArray
    post_popularity: FloatArray
    post_peak_day: FloatArray
    post_trend_width: FloatArray
    post_shown: npt.NDArray[np.bool_]

    def user_rows(self, user_ids: npt.ArrayLike) -> IntArray:
        """Row of each user id; raises when an id is unknown."""
        return _rows(self.user_id, user_ids, "user")

    def post_rows(self, post_ids: npt.ArrayLike) -> IntArray:
        """Row of each post id; raises when an id is unknown."""
        return _rows(self.post_id, post_ids, "post")


def _rows(known: IntArray, ids: npt.ArrayLike, kind: str) -> IntArray:
    wanted = np.asarray(ids, dtype=np.int64)
    rows = np.clip(np.searchsorted(known, wanted), 0, len(known) - 1)
    missing = known[rows] != wanted
    if missing.any():
        raise DataValidationError(f"{kind} ids not in the world's truth: {wanted[missing][:5].tolist()}; re-seed")
    return rows


def subtopic_exposure(truth: WorldTruth, users: IntArray) -> FloatArray:
    """Users x sub-topics: the share of each user's views that shows each sub-topic."""
    counts = np.bincount(truth.post_subtopic[truth.post_shown], minlength=len(truth.params.subtopic_topics))
    catalogue = counts / counts.sum()
    taste = truth.user_topic_taste[users][:, truth.params.subtopic_topics] + truth.user_subtopic_taste[users]
    with np.errstate(divide="ignore"):
        logits = np.log(catalogue)[None, :] + truth.params.exposure_taste_power * taste
    tasteful = np.exp(logits - logits.max(axis=1, keepdims=True))
    tasteful /= tasteful.sum(axis=1, keepdims=True)
    mix = truth.params.exposure_taste_mix
    return np.asarray((1 - mix) * catalogue[None, :] + mix * tasteful)


def daily_post_exposure(truth: WorldTruth) -> FloatArray:
    """Days x posts: each post's share of its sub-topic's views on each day (zero for never-shown posts)."""
    days = np.arange(PERIOD_DAYS, dtype=np.float64)[:, None]
    bump = np.exp(-0.5 * ((days - truth.post_peak_day[None, :]) / truth.post_trend_width[None, :]) ** 2)
    weights = truth.post_popularity[None, :] * (1 + truth.params.trend_amplitude * bump) * truth.post_shown[None, :]
    totals = np.zeros((PERIOD_DAYS, len(truth.params.subtopic_topics)))
    np.add.at(totals.T, truth.post_subtopic, weights.T)
    return np.asarray(weights / np.maximum(totals[:, truth.post_subtopic], 1e-300))


def like_logit_base(truth: WorldTruth, users: IntArray, posts: IntArray) -> FloatArray:
    """Users x posts like logit without the time terms (month offset, hour effect)."""
    return np.asarray(
        truth.user_bias[users][:, None]
        + truth.user_topic_taste[users][:, truth.post_topic[posts]]
        + truth.user_subtopic_taste[users][:, truth.post_subtopic[posts]]
        + truth.post_quality[posts][None, :]
    )


def day_month(day: IntArray) -> IntArray:
    """Month index (0 = October) of day indices."""
    return np.searchsorted(np.array(MONTH_OF_DAY_STARTS), day, side="right") - 1


def hour_averaged_like(truth: WorldTruth, logits: FloatArray) -> FloatArray:
    """Like probability averaged over the hours of a day, weighted by when views happen."""
    shape = np.array(truth.params.hour_view_shape)
    effect = np.array(truth.params.hour_like_effect)
    table = (sigmoid(_LOGIT_GRID[:, None] + effect[None, :]) * shape[None, :]).sum(axis=1)
    return np.asarray(np.interp(logits, _LOGIT_GRID, table))


def window_day_mass(truth: WorldTruth, start: datetime, end: datetime) -> FloatArray:
    """Per day of the period, the share of all views that falls in ``[start, end)``."""
    day_starts = [PERIOD_START + timedelta(days=d) for d in range(PERIOD_DAYS)]
    shape = np.array(truth.params.hour_view_shape)
    inside = np.array([_day_share_before(shape, end - s) - _day_share_before(shape, start - s) for s in day_starts])
    return np.asarray(np.array(truth.params.day_weights) * np.clip(inside, 0, 1))


def _day_share_before(shape: FloatArray, since_midnight: timedelta) -> float:
    hours = since_midnight.total_seconds() / 3600 - FIRST_MINUTE / 60
    cumulative = np.concatenate([[0.0], np.cumsum(shape)])
    return float(np.interp(hours, np.arange(len(cumulative)), cumulative))


def oracle_scores(
    truth: WorldTruth,
    user_ids: npt.ArrayLike,
    post_ids: npt.ArrayLike,
    start: datetime,
    end: datetime,
    seen_before: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float32]:
    """The probability that each user likes each post within ``[start, end)`` (users x posts, float32).

    It is the chance that the post's first view falls in the window (exposure) times the like probability at
    that time. Ranking posts by it is the best possible ranking for hit rate in expectation.

    Args:
        truth: The world's truth (:func:`batch.world_store.load_truth`).
        user_ids: Users, one row each.
        post_ids: Posts, one column each.
        start: Window start (naive datetime, like ``feed_data.timestamp``).
        end: Window end, excluded.
        seen_before: Optional users x posts mask of pairs already viewed before ``start``: those cannot be liked
            any more, and the others are certain not to have been seen; this gives the exact conditional ceiling.
    """
    users, posts = truth.user_rows(user_ids), truth.post_rows(post_ids)
    exposure = subtopic_exposure(truth, users)[:, truth.post_subtopic[posts]] * truth.user_draws[users][:, None]
    daily = daily_post_exposure(truth)[:, posts]
    before = window_day_mass(truth, PERIOD_START, start) @ daily
    base = like_logit_base(truth, users, posts)
    window_rate, like_rate = _window_rates(truth, exposure, daily, base, start, end)
    if seen_before is None:
        first_in_window = np.exp(-exposure * before[None, :]) * -np.expm1(-window_rate)
    else:
        first_in_window = np.where(seen_before, 0.0, -np.expm1(-window_rate))
    like_given_view = like_rate / np.maximum(window_rate, 1e-12)
    return np.asarray(truth.user_keep[users][:, None] * first_in_window * like_given_view, dtype=np.float32)


def _window_rates(
    truth: WorldTruth, exposure: FloatArray, daily: FloatArray, base: FloatArray, start: datetime, end: datetime
) -> tuple[FloatArray, FloatArray]:
    """Expected draws of each pair in the window, and expected liking draws, summed month by month."""
    mass = window_day_mass(truth, start, end)
    months = day_month(np.arange(PERIOD_DAYS))
    window_rate, like_rate = np.zeros_like(base), np.zeros_like(base)
    for month, offset in enumerate(truth.params.month_offsets):
        month_mass = np.where(months == month, mass, 0.0)
        if month_mass.sum() == 0:
            continue
        rate = exposure * (month_mass @ daily)[None, :]
        window_rate += rate
        like_rate += rate * hour_averaged_like(truth, base + offset)
    return window_rate, like_rate
