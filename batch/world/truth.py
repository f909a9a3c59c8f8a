"""The world's ground truth and the oracle: the exact model the feed was generated from.

How the feed is generated (see :mod:`batch.world.views` and :mod:`batch.world.feed`):

* A user's candidate views are a Poisson process with ``draws`` expected candidates over the period. Each picks
  a day (the global day weights, or the user's own active days where it has them), an hour (the daily shape), a
  group (the user's exposure mix: fixed shares for trending groups, the rest the catalogue's share blended with
  the user's interests, which correlate with their tastes) and a post of that group (popularity x (1 + a trend
  that rises from the post's release day and decays), renormalised per day).
* The feed does not show a post twice: a pair drawn at least once is shown once, at the time of one of its
  draws; 4% extra re-shows of already seen posts are added, never liked.
* A first view is liked with ``sigmoid(month offset + hour effect + user bias + topic taste + group taste +
  group offset + post quality)``; the offsets were solved so that the like rate per month matches the real
  one and every group has its target like rate.

:func:`oracle_scores` turns this into the probability that a user likes a post within a time window: the chance
that the pair's (single) first view falls in the window times the like probability there. With ``draws`` x the
pair's exposure share = L over the period, of which Lw in the window and Lb before it, the pair is shown with
probability ``1 - exp(-L)`` and its view lands in the window with a further ``Lw / L``. Ranking by it is
the ceiling that no model can pass in expectation; pass ``seen_before`` (the pairs viewed before ``start``) to
condition on the realised history as well, the exact ceiling for an evaluation that knows the feed up to ``start``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from batch.ranking.positions import positions_or_last
from batch.world.dist import FloatArray, IntArray, sigmoid
from batch.world.facts import FIRST_MINUTE
from batch.world.params import WorldParams
from common.errors import DataValidationError

__all__ = ["WorldParams", "WorldTruth", "oracle_scores", "topic_level_truth"]

_LOGIT_GRID = np.linspace(-20.0, 12.0, 6401)


@dataclass(frozen=True, slots=True)
class WorldTruth:
    """Everything the feed was generated from. User and post arrays are sorted by id.

    Attributes:
        params: The global parameters.
        user_id: User ids, ascending.
        user_draws: Expected candidate views per user over the period (see :mod:`batch.world.views`).
        user_bias: Like logit of the user.
        user_topic_taste: Like logit per user and topic (``common.columns.TOPICS`` order).
        user_group_taste: Like logit per user and group (see :class:`WorldParams`).
        user_interest: Exposure logit per user and group (correlated with the tastes).
        user_day_ptr: Users + 1 offsets into ``user_days``: user i's active days are
            ``user_days[user_day_ptr[i]:user_day_ptr[i + 1]]``; none means the global day weights.
        user_days: Active day indices, per user ascending.
        user_day_weights: Share of the user's views on each active day (sums to 1 per user).
        post_id: Post ids, ascending.
        post_topic: Topic index of each post.
        post_subtopic: Index of the sub-topic its text was written from (``batch.world.posts.SUBTOPICS``).
        post_group: Group index of each post.
        post_quality: Like logit of the post.
        post_popularity: Base exposure weight of the post within its group.
        post_release_day: Day (0 = the period's first, may lie before it) when the post's trend starts.
        post_trend_days: Time constant of the trend's exponential decay, in days.
        post_shown: Whether the feed ever shows the post.
    """

    params: WorldParams
    user_id: IntArray
    user_draws: FloatArray
    user_bias: FloatArray
    user_topic_taste: FloatArray
    user_group_taste: FloatArray
    user_interest: FloatArray
    user_day_ptr: IntArray
    user_days: IntArray
    user_day_weights: FloatArray
    post_id: IntArray
    post_topic: IntArray
    post_subtopic: IntArray
    post_group: IntArray
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

    def has_active_days(self, users: IntArray) -> npt.NDArray[np.bool_]:
        """Whether each user (truth rows) views on its own active days rather than by the global day weights."""
        return np.asarray(self.user_day_ptr[users + 1] > self.user_day_ptr[users])


def _rows(known: IntArray, ids: npt.ArrayLike, kind: str) -> IntArray:
    wanted = np.asarray(ids, dtype=np.int64)
    rows, found = positions_or_last(known, wanted)
    missing = ~found
    if missing.any():
        raise DataValidationError(f"{kind} ids not in the world's truth: {wanted[missing][:5].tolist()}; re-seed")
    return rows


def _topic_means(values: FloatArray, group_topics: IntArray) -> FloatArray:
    """Users x groups: each value replaced by the user's mean over the groups of the same topic."""
    blurred = np.empty_like(values)
    for topic in np.unique(group_topics):
        members = group_topics == topic
        blurred[:, members] = values[:, members].mean(axis=1, keepdims=True)
    return blurred


def topic_level_truth(truth: WorldTruth, tastes: bool = True, interests: bool = True) -> WorldTruth:
    """The truth as a model that knows users only topic by topic sees it: group tastes and/or exposure
    interests replaced by each user's mean over the topic's groups; posts and everything else exact.

    Ranking by its :func:`oracle_scores` is the ceiling of a model whose user features stop at the topic, as
    ``control``'s do: it cannot tell a user's favourite group (sub-topic, or hidden cluster in ``collab``) from
    the others of the same topic.
    """
    topics = np.array(truth.params.group_topics, dtype=np.int64)
    return replace(
        truth,
        user_group_taste=_topic_means(truth.user_group_taste, topics) if tastes else truth.user_group_taste,
        user_interest=_topic_means(truth.user_interest, topics) if interests else truth.user_interest,
    )


def group_exposure(truth: WorldTruth, users: IntArray) -> FloatArray:
    """Users x groups: the share of each user's views that shows each group."""
    fixed = np.array(truth.params.group_fixed_shares)
    counts = np.bincount(truth.post_group[truth.post_shown], minlength=len(fixed)) * (fixed == 0)
    catalogue = counts / counts.sum()
    taste = truth.user_interest[users]
    with np.errstate(divide="ignore"):
        logits = np.log(catalogue)[None, :] + truth.params.exposure_taste_power * taste
    tasteful = np.exp(logits - logits.max(axis=1, keepdims=True))
    tasteful /= tasteful.sum(axis=1, keepdims=True)
    mix = truth.params.exposure_taste_mix
    return np.asarray(((1 - mix) * catalogue[None, :] + mix * tasteful) * (1 - fixed.sum()) + fixed[None, :])


def trend_bump(truth: WorldTruth, age: FloatArray) -> FloatArray:
    """A post's trend at ``age`` days after its release: 0 before, rising linearly to 1, then decaying."""
    rise = truth.params.trend_rise_days
    decay = np.exp(-np.maximum(age - rise, 0) / truth.post_trend_days[None, :])
    return np.asarray(np.where(age >= 0, decay * np.minimum(1.0, (age + 1) / (rise + 1)), 0.0))


def daily_post_exposure(truth: WorldTruth) -> FloatArray:
    """Days x posts: each post's share of its group's views on each day (zero for never-shown posts)."""
    days = np.arange(truth.params.period_days, dtype=np.float64)[:, None]
    bump = trend_bump(truth, days - truth.post_release_day[None, :])
    weights = truth.post_popularity[None, :] * (1 + truth.params.trend_amplitude * bump) * truth.post_shown[None, :]
    totals = np.zeros((truth.params.period_days, len(truth.params.group_topics)))
    np.add.at(totals.T, truth.post_group, weights.T)
    return np.asarray(weights / np.maximum(totals[:, truth.post_group], 1e-300))


def user_day_sum(truth: WorldTruth, users: IntArray, day_factor: FloatArray, daily: FloatArray) -> FloatArray:
    """Per user and post, the sum over days of (the user's day weight x ``day_factor`` x ``daily``).

    Users without active days share one row (the global day weights): the result is then 1 x posts, to broadcast;
    otherwise users x posts, the users with active days summed over those days only.
    """
    shared = ((np.array(truth.params.day_weights) * day_factor) @ daily)[None, :]
    own = truth.has_active_days(users)
    if not own.any():
        return np.asarray(shared)
    result = np.repeat(shared, len(users), axis=0)
    result[own] = _active_day_weights(truth, users[own], day_factor) @ daily
    return result


def _active_day_weights(truth: WorldTruth, users: IntArray, day_factor: FloatArray) -> sp.csr_matrix:
    """Users x days sparse matrix of each user's active-day weights times ``day_factor``."""
    starts, ends = truth.user_day_ptr[users], truth.user_day_ptr[users + 1]
    entries = np.concatenate([np.arange(s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)])
    days = truth.user_days[entries]
    indptr = np.concatenate([[0], np.cumsum(ends - starts)])
    shape = (len(users), truth.params.period_days)
    return sp.csr_matrix((truth.user_day_weights[entries] * day_factor[days], days, indptr), shape=shape)


def like_logit_base(truth: WorldTruth, users: IntArray, posts: IntArray) -> FloatArray:
    """Users x posts like logit without the time terms (month offset, hour effect)."""
    post_part = truth.post_quality[posts] + np.array(truth.params.group_offsets)[truth.post_group[posts]]
    return np.asarray(
        truth.user_bias[users][:, None]
        + truth.user_topic_taste[users][:, truth.post_topic[posts]]
        + truth.user_group_taste[users][:, truth.post_group[posts]]
        + post_part[None, :]
    )


def pair_like_logits(truth: WorldTruth, users: IntArray, posts: IntArray) -> FloatArray:
    """Like logit of each (users[i], posts[i]) pair without the time terms."""
    return np.asarray(
        truth.user_bias[users]
        + truth.user_topic_taste[users, truth.post_topic[posts]]
        + truth.user_group_taste[users, truth.post_group[posts]]
        + truth.post_quality[posts]
        + np.array(truth.params.group_offsets)[truth.post_group[posts]]
    )


def hour_averaged_like(truth: WorldTruth, logits: FloatArray) -> FloatArray:
    """Like probability averaged over the hours of a day, weighted by when views happen."""
    shape = np.array(truth.params.hour_view_shape)
    effect = np.array(truth.params.hour_like_effect)
    table = (sigmoid(_LOGIT_GRID[:, None] + effect[None, :]) * shape[None, :]).sum(axis=1)
    return np.asarray(np.interp(logits, _LOGIT_GRID, table))


def window_day_fraction(params: WorldParams, start: datetime, end: datetime) -> FloatArray:
    """Per day of the period, the share of that day's views that falls in ``[start, end)``."""
    day_starts = [params.start + timedelta(days=d) for d in range(params.period_days)]
    shape = np.array(params.hour_view_shape)
    inside = np.array([_day_share_before(shape, end - s) - _day_share_before(shape, start - s) for s in day_starts])
    return np.asarray(np.clip(inside, 0, 1))


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
    return _oracle(truth, users, posts, daily_post_exposure(truth)[:, posts], start, end, seen_before)


def oracle_scores_per_user(
    truth: WorldTruth,
    user_ids: npt.ArrayLike,
    post_ids: npt.ArrayLike,
    starts: Sequence[datetime],
    window: timedelta,
    seen_before: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float32]:
    """:func:`oracle_scores` with a window of its own per user: ``[starts[i], starts[i] + window)`` for user i.

    For a per-user hold-out (each user's last likes), where every user's window starts at a time of its own. Users
    sharing a start are scored together, so the cost grows with the number of distinct starts.

    Args:
        truth: The world's truth.
        user_ids: Users, one row each.
        post_ids: Posts, one column each.
        starts: Each user's window start (naive datetime), as many as users.
        window: Length of every user's window.
        seen_before: Optional users x posts mask of the pairs each user viewed before its own start.

    Raises:
        ValueError: ``starts`` does not have one entry per user.
    """
    users, posts = truth.user_rows(user_ids), truth.post_rows(post_ids)
    if len(starts) != len(users):
        raise ValueError(f"oracle_scores_per_user needs one start per user: {len(starts)} starts, {len(users)} users")
    daily = daily_post_exposure(truth)[:, posts]
    scores = np.empty((len(users), len(posts)), dtype=np.float32)
    by_start: dict[datetime, list[int]] = {}
    for row, start in enumerate(starts):
        by_start.setdefault(start, []).append(row)
    for start, rows in by_start.items():
        mask = seen_before[rows] if seen_before is not None else None
        scores[rows] = _oracle(truth, users[rows], posts, daily, start, start + window, mask)
    return scores


def _oracle(
    truth: WorldTruth,
    users: IntArray,
    posts: IntArray,
    daily: FloatArray,
    start: datetime,
    end: datetime,
    seen_before: npt.NDArray[np.bool_] | None,
) -> npt.NDArray[np.float32]:
    """:func:`oracle_scores` for rows of the truth, with the days x posts exposure shares already computed."""
    exposure = group_exposure(truth, users)[:, truth.post_group[posts]] * truth.user_draws[users][:, None]
    every_day = np.ones(truth.params.period_days)
    total = exposure * user_day_sum(truth, users, every_day, daily)
    before = exposure * user_day_sum(truth, users, window_day_fraction(truth.params, truth.params.start, start), daily)
    window, liking = _window_rates(truth, users, exposure, daily, like_logit_base(truth, users, posts), start, end)
    safe_total = np.maximum(total, 1e-300)
    shown = -np.expm1(-total)
    in_window = shown * window / safe_total
    if seen_before is not None:
        unseen = np.maximum(1 - shown * before / safe_total, 1e-12)
        in_window = np.where(seen_before, 0.0, in_window / unseen)
    like_given_view = liking / np.maximum(window, 1e-300)
    return np.asarray(in_window * like_given_view, dtype=np.float32)


def _window_rates(
    truth: WorldTruth,
    users: IntArray,
    exposure: FloatArray,
    daily: FloatArray,
    base: FloatArray,
    start: datetime,
    end: datetime,
) -> tuple[FloatArray, FloatArray]:
    """Expected draws of each pair in the window, and expected liking draws, summed month by month."""
    fraction = window_day_fraction(truth.params, start, end)
    months = truth.params.day_month(np.arange(truth.params.period_days))
    window_rate, like_rate = np.zeros_like(base), np.zeros_like(base)
    for month, offset in enumerate(truth.params.month_offsets):
        month_fraction = np.where(months == month, fraction, 0.0)
        if month_fraction.sum() == 0:
            continue
        rate = exposure * user_day_sum(truth, users, month_fraction, daily)
        window_rate += rate
        like_rate += rate * hour_averaged_like(truth, base + offset)
    return window_rate, like_rate
