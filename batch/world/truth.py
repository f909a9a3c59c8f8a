"""The world's ground truth and the oracle: the exact model the feed was generated from.

How the feed is generated (see :mod:`batch.world.views` and :mod:`batch.world.feed`):

* A user's candidate views are a Poisson process with ``draws`` expected candidates over the period. Each picks
  a day (global day weights), an hour (the daily shape), a sub-topic (the user's exposure mix: the catalogue's
  share blended with the user's interests, which correlate with their tastes) and a post of that sub-topic
  (popularity x (1 + a trend that jumps on the post's release day and decays), renormalised per day).
* The feed does not show a post twice: a pair drawn at least once is shown once, at the time of one of its
  draws; 4% extra re-shows of already seen posts are added, never liked.
* A first view is liked with ``sigmoid(month offset + hour effect + user bias + topic taste + sub-topic taste +
  sub-topic offset + post quality)``; the offsets were solved so that the like rate per month matches the real
  one and every sub-topic has the same like rate.

:func:`oracle_scores` turns this into the probability that a user likes a post within a time window: the chance
that the pair's (single) first view falls in the window times the like probability there. With ``draws`` x the
pair's exposure share = L over the period, of which Lw in the window and Lb before it, the pair is shown with
probability ``1 - exp(-L)`` and its view lands in the window with a further ``Lw / L``. Ranking by it is
the ceiling that no model can pass in expectation; pass ``seen_before`` (the pairs viewed before ``start``) to
condition on the realised history as well, the exact ceiling for an evaluation that knows the feed up to ``start``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from batch.ranking.positions import positions_or_last
from batch.world.dist import FloatArray, IntArray, sigmoid
from batch.world.facts import FIRST_MINUTE, MONTH_OF_DAY_STARTS, PERIOD_DAYS, PERIOD_START
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
        trend_amplitude: Extra exposure multiplier of a post on its release day, on top of its base popularity.
        day_weights: Share of all views on each day of the period (sums to 1).
        hour_view_shape: Share of a day's views in each hour 06..23 (sums to 1).
        hour_like_effect: Like logit added in each hour 06..23.
        subtopic_topics: Topic index (into ``common.columns.TOPICS``) of each sub-topic.
        subtopic_names: Name of each sub-topic.
        subtopic_offsets: Like logit offset of each sub-topic (solved by calibration so that every sub-topic has
            the same like rate: the feed shows sub-topics to the users who like them, which alone would make
            niche sub-topics' posts look far better liked than the real per-post like rates allow).
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
    subtopic_offsets: tuple[float, ...]

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
            subtopic_offsets=tuple(float(v) for v in raw["subtopic_offsets"]),
        )


@dataclass(frozen=True, slots=True)
class WorldTruth:
    """Everything the feed was generated from. User and post arrays are sorted by id.

    Attributes:
        params: The global parameters.
        user_id: User ids, ascending.
        user_draws: Expected candidate views per user over the period (see :mod:`batch.world.views`).
        user_bias: Like logit of the user.
        user_topic_taste: Like logit per user and topic (``common.columns.TOPICS`` order).
        user_subtopic_taste: Like logit per user and sub-topic.
        user_interest: Exposure logit per user and sub-topic (correlated with the tastes).
        post_id: Post ids, ascending.
        post_topic: Topic index of each post.
        post_subtopic: Sub-topic index of each post.
        post_quality: Like logit of the post.
        post_popularity: Base exposure weight of the post within its sub-topic.
        post_release_day: Day (0 = 2021-10-01, may lie before the period) when the post's trend starts.
        post_trend_days: Time constant of the trend's exponential decay, in days.
        post_shown: Whether the feed ever shows the post.
    """

    params: WorldParams
    user_id: IntArray
    user_draws: FloatArray
    user_bias: FloatArray
    user_topic_taste: FloatArray
    user_subtopic_taste: FloatArray
    user_interest: FloatArray
    post_id: IntArray
    post_topic: IntArray
    post_subtopic: IntArray
    post_quality: FloatArray
    post_popularity: FloatArray
    post_release_day: FloatArray
    post_trend_days: FloatArray
    post_shown: npt.NDArray[np.bool_]

    def user_rows(self, user_ids: npt.ArrayLike) -> IntArray:
        """Row of each user id; raises when an id is unknown."""
        return _rows(self.user_id, user_ids, "user")

    def post_rows(self, post_ids: npt.ArrayLike) -> IntArray:
        """Row of each post id; raises when an id is unknown."""
        return _rows(self.post_id, post_ids, "post")


def _rows(known: IntArray, ids: npt.ArrayLike, kind: str) -> IntArray:
    wanted = np.asarray(ids, dtype=np.int64)
    rows, found = positions_or_last(known, wanted)
    missing = ~found
    if missing.any():
        raise DataValidationError(f"{kind} ids not in the world's truth: {wanted[missing][:5].tolist()}; re-seed")
    return rows


def _topic_means(values: FloatArray, subtopic_topics: IntArray) -> FloatArray:
    """Users x sub-topics: each value replaced by the user's mean over the sub-topics of the same topic."""
    blurred = np.empty_like(values)
    for topic in np.unique(subtopic_topics):
        members = subtopic_topics == topic
        blurred[:, members] = values[:, members].mean(axis=1, keepdims=True)
    return blurred


def topic_level_truth(truth: WorldTruth, tastes: bool = True, interests: bool = True) -> WorldTruth:
    """The truth as a model that knows users only topic by topic sees it: sub-topic tastes and/or exposure
    interests replaced by each user's mean over the topic's sub-topics; posts and everything else exact.

    Ranking by its :func:`oracle_scores` is the ceiling of a model whose user features stop at the topic, as
    ``control``'s do: it cannot tell a user's favourite sub-topic from the others of the same topic.
    """
    topics = np.array(truth.params.subtopic_topics, dtype=np.int64)
    return replace(
        truth,
        user_subtopic_taste=_topic_means(truth.user_subtopic_taste, topics) if tastes else truth.user_subtopic_taste,
        user_interest=_topic_means(truth.user_interest, topics) if interests else truth.user_interest,
    )


def subtopic_exposure(truth: WorldTruth, users: IntArray) -> FloatArray:
    """Users x sub-topics: the share of each user's views that shows each sub-topic."""
    counts = np.bincount(truth.post_subtopic[truth.post_shown], minlength=len(truth.params.subtopic_topics))
    catalogue = counts / counts.sum()
    taste = truth.user_interest[users]
    with np.errstate(divide="ignore"):
        logits = np.log(catalogue)[None, :] + truth.params.exposure_taste_power * taste
    tasteful = np.exp(logits - logits.max(axis=1, keepdims=True))
    tasteful /= tasteful.sum(axis=1, keepdims=True)
    mix = truth.params.exposure_taste_mix
    return np.asarray((1 - mix) * catalogue[None, :] + mix * tasteful)


def daily_post_exposure(truth: WorldTruth) -> FloatArray:
    """Days x posts: each post's share of its sub-topic's views on each day (zero for never-shown posts)."""
    days = np.arange(PERIOD_DAYS, dtype=np.float64)[:, None]
    age = days - truth.post_release_day[None, :]
    bump = np.where(age >= 0, np.exp(-np.maximum(age, 0) / truth.post_trend_days[None, :]), 0.0)
    weights = truth.post_popularity[None, :] * (1 + truth.params.trend_amplitude * bump) * truth.post_shown[None, :]
    totals = np.zeros((PERIOD_DAYS, len(truth.params.subtopic_topics)))
    np.add.at(totals.T, truth.post_subtopic, weights.T)
    return np.asarray(weights / np.maximum(totals[:, truth.post_subtopic], 1e-300))


def like_logit_base(truth: WorldTruth, users: IntArray, posts: IntArray) -> FloatArray:
    """Users x posts like logit without the time terms (month offset, hour effect)."""
    post_part = truth.post_quality[posts] + np.array(truth.params.subtopic_offsets)[truth.post_subtopic[posts]]
    return np.asarray(
        truth.user_bias[users][:, None]
        + truth.user_topic_taste[users][:, truth.post_topic[posts]]
        + truth.user_subtopic_taste[users][:, truth.post_subtopic[posts]]
        + post_part[None, :]
    )


def pair_like_logits(truth: WorldTruth, users: IntArray, posts: IntArray) -> FloatArray:
    """Like logit of each (users[i], posts[i]) pair without the time terms."""
    return np.asarray(
        truth.user_bias[users]
        + truth.user_topic_taste[users, truth.post_topic[posts]]
        + truth.user_subtopic_taste[users, truth.post_subtopic[posts]]
        + truth.post_quality[posts]
        + np.array(truth.params.subtopic_offsets)[truth.post_subtopic[posts]]
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

    It is the chance that the pair's first view falls in the window times the like probability at that time
    (see the module docstring). Ranking posts by it is the best possible ranking for hit rate in expectation.

    Args:
        truth: The world's truth (:func:`batch.world.store.load_truth`).
        user_ids: Users, one row each.
        post_ids: Posts, one column each.
        start: Window start (naive datetime, like ``feed_data.timestamp``).
        end: Window end, excluded.
        seen_before: Optional users x posts mask of the pairs already viewed before ``start``: those cannot be
            liked any more, and the others are known not to have been shown yet; this gives the exact
            conditional ceiling.
    """
    users, posts = truth.user_rows(user_ids), truth.post_rows(post_ids)
    exposure = subtopic_exposure(truth, users)[:, truth.post_subtopic[posts]] * truth.user_draws[users][:, None]
    daily = daily_post_exposure(truth)[:, posts]
    total = exposure * (np.array(truth.params.day_weights) @ daily)[None, :]
    before = exposure * (window_day_mass(truth, PERIOD_START, start) @ daily)[None, :]
    window, liking = _window_rates(truth, exposure, daily, like_logit_base(truth, users, posts), start, end)
    safe_total = np.maximum(total, 1e-300)
    shown = -np.expm1(-total)
    in_window = shown * window / safe_total
    if seen_before is not None:
        unseen = np.maximum(1 - shown * before / safe_total, 1e-12)
        in_window = np.where(seen_before, 0.0, in_window / unseen)
    like_given_view = liking / np.maximum(window, 1e-300)
    return np.asarray(in_window * like_given_view, dtype=np.float32)


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
