"""Which posts each user is shown and when: one chunk of users at a time, vectorised numpy.

A user's candidate views form a Poisson process: ``draws`` expected candidates over the period, each picking a
group from the user's exposure mix and a post from its group's (time-varying) popularity. The feed does not show
a post twice, so a (user, post) pair is shown when it is drawn at least once, with probability
``1 - exp(-draws x mix[group] x post share)``, at a time drawn from the pair's own intensity over the period
(day weight x the post's daily share x the daily hour shape). The day weights are global, or the user's own
active days where it has them (the ``bursty`` world); then the post share is the user's own too. ``draws`` is
solved per user so the expected number of shown posts is the planned one. Then 4% re-shows of already seen posts
are added at later times (on the same day for users with active days: they visit in sessions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from batch.world.dist import FloatArray, IntArray, segment_starts
from batch.world.facts import FIRST_MINUTE, MIN_VIEWS, REPEAT_VIEW_SHARE
from batch.world.truth import WorldTruth, daily_post_exposure, group_exposure, user_day_sum

MINUTES_PER_DAY = 24 * 60 - FIRST_MINUTE
_MAX_DISTINCT_SHARE = 0.6
"""No user views more than this share of the shown posts (binds only at small scales)."""
_GAIN_GRID = np.linspace(-12.0, 14.0, 521)
"""log of expected draws into one group, where the distinct-posts gain of each group is tabulated."""


@dataclass(frozen=True, slots=True)
class Sampler:
    """Tables shared by every chunk.

    Attributes:
        daily: Days x posts: each post's share of its group's views on each day.
        period_minute_cdf: CDF over every minute of the period (day weight x hour shape).
        day_minute_cdf: CDF over the minutes of one day (06:00..23:59).
        post_day_cdf: Per post, CDF over days of its intensity, laid end to end (post p spans (p, p + 1]).
        post_share: Each post's share of its group's views over the whole period (global day weights).
        gain: Groups x grid: expected distinct posts seen in a group after exp(grid) draws into it.
        max_distinct: Most distinct posts any user is planned to view.
    """

    daily: FloatArray
    period_minute_cdf: FloatArray
    day_minute_cdf: FloatArray
    post_day_cdf: FloatArray
    post_share: FloatArray
    gain: FloatArray
    max_distinct: int


@dataclass(frozen=True, slots=True)
class Views:
    """One chunk's views: user rows (into the truth), post rows, seconds since the period start, re-show flag."""

    user: IntArray
    post: IntArray
    second: IntArray
    repeat: npt.NDArray[np.bool_]


def build_sampler(truth: WorldTruth) -> Sampler:
    """Precompute the tables :func:`draw_views` uses."""
    day_weights = np.array(truth.params.day_weights)
    minute_shape = np.repeat(np.array(truth.params.hour_view_shape) / 60, 60)
    daily = daily_post_exposure(truth)
    intensity = day_weights[:, None] * daily
    post_share = intensity.sum(axis=0)
    return Sampler(
        daily=daily,
        period_minute_cdf=_closed_cdf((day_weights[:, None] * minute_shape[None, :]).ravel()),
        day_minute_cdf=_closed_cdf(minute_shape),
        post_day_cdf=_stacked_cdfs(intensity.T),
        post_share=post_share,
        gain=_group_gain(truth, post_share),
        max_distinct=max(1, int(_MAX_DISTINCT_SHARE * truth.post_shown.sum())),
    )


def _closed_cdf(mass: FloatArray) -> FloatArray:
    cdf = np.cumsum(mass)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def _stacked_cdfs(mass: FloatArray) -> FloatArray:
    """Row-wise CDFs laid end to end: row r spans (r, r + 1]; an all-zero row collapses onto its start."""
    cdf = np.cumsum(mass, axis=1)
    totals = cdf[:, -1:]
    cdf = np.divide(cdf, totals, out=np.zeros_like(cdf), where=totals > 0)
    cdf[:, -1] = np.where(totals[:, 0] > 0, 1.0, 0.0)
    return np.asarray(np.maximum.accumulate((cdf + np.arange(len(cdf))[:, None]).ravel()))


def _group_gain(truth: WorldTruth, post_share: FloatArray) -> FloatArray:
    draws = np.exp(_GAIN_GRID)
    gain = np.zeros((len(truth.params.group_topics), len(draws)))
    for group in range(len(gain)):
        shares = post_share[truth.post_group == group]
        gain[group] = -np.expm1(-np.outer(draws, shares)).sum(axis=1)
    return gain


def _repeats(planned: IntArray) -> IntArray:
    return np.asarray(np.round(planned * REPEAT_VIEW_SHARE), dtype=np.int64)


def distinct_views(sampler: Sampler, planned: IntArray) -> IntArray:
    """How many different posts users with ``planned`` views see: the plan less its re-shows, capped."""
    return np.asarray(np.minimum(planned - _repeats(planned), sampler.max_distinct), dtype=np.int64)


def user_post_share(truth: WorldTruth, sampler: Sampler, users: IntArray) -> FloatArray:
    """Each post's share of its group's views as each user (truth rows) sees the period: 1 x posts when every
    user follows the global day weights, else users x posts."""
    if not truth.has_active_days(users).any():
        return sampler.post_share[None, :]
    return user_day_sum(truth, users, np.ones(truth.params.period_days), sampler.daily)


def solve_draws(truth: WorldTruth, sampler: Sampler, users: IntArray, distinct: IntArray) -> FloatArray:
    """Per user, the expected candidate draws that make the expected distinct posts seen equal ``distinct``."""
    mix = group_exposure(truth, users)
    if truth.has_active_days(users).any():
        unit = mix[:, truth.post_group] * user_post_share(truth, sampler, users)
        return _bisect_draws(distinct, lambda log_draws: _exact_distinct(unit, log_draws))
    return _bisect_draws(distinct, lambda log_draws: _expected_distinct(sampler, mix, log_draws))


def _bisect_draws(distinct: IntArray, expected: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """exp of the log draws at which ``expected(log draws)`` (increasing) reaches ``distinct``, per user."""
    low = np.log(np.maximum(distinct, 1).astype(np.float64)) - 1.0
    high = low + 25.0
    for _ in range(40):
        middle = (low + high) / 2
        too_few = expected(middle) < distinct
        low, high = np.where(too_few, middle, low), np.where(too_few, high, middle)
    return np.asarray(np.exp((low + high) / 2))


def _exact_distinct(unit: FloatArray, log_draws: FloatArray) -> FloatArray:
    """Expected distinct posts seen per user, summed post by post (users whose post shares are their own)."""
    return np.asarray(-np.expm1(-np.exp(log_draws)[:, None] * unit).sum(axis=1))


def _expected_distinct(sampler: Sampler, mix: FloatArray, log_draws: FloatArray) -> FloatArray:
    """Sum over groups of the tabulated gain, linearly interpolated on the uniform log grid."""
    step = _GAIN_GRID[1] - _GAIN_GRID[0]
    with np.errstate(divide="ignore"):
        position = (log_draws[:, None] + np.log(mix) - _GAIN_GRID[0]) / step
    position = np.clip(position, 0.0, len(_GAIN_GRID) - 1.000001)
    index = position.astype(np.int64)
    fraction = position - index
    rows = np.arange(mix.shape[1])[None, :]
    gain = sampler.gain[rows, index] * (1 - fraction) + sampler.gain[rows, index + 1] * fraction
    return np.asarray(gain.sum(axis=1))


def draw_views(
    truth: WorldTruth, sampler: Sampler, users: IntArray, planned: IntArray, rng: np.random.Generator
) -> Views:
    """The views of ``users`` (truth rows) with about ``planned`` views each, re-shows included."""
    repeats = _repeats(planned)
    # float32 and in place: this users x posts matrix is the chunk's largest array.
    rate = group_exposure(truth, users).astype(np.float32)[:, truth.post_group]
    rate *= truth.user_draws[users].astype(np.float32)[:, None]
    rate *= user_post_share(truth, sampler, users).astype(np.float32)
    # Drawn at least once in a Poisson process of this rate: an exponential waiting time below the rate.
    shown = rng.standard_exponential(rate.shape, dtype=np.float32) < rate
    _top_up(shown, rate, np.maximum(MIN_VIEWS - repeats, 0), rng)
    local, post = np.nonzero(shown)
    own_days = truth.has_active_days(users)
    second = _pair_seconds(truth, sampler, users[local], own_days[local], post, rng)
    extra_local, extra_post, extra_second = _reshows(sampler, local, post, second, repeats, own_days, rng)
    return Views(
        user=users[np.concatenate([local, extra_local])],
        post=np.concatenate([post, extra_post]),
        second=np.concatenate([second, extra_second]),
        repeat=np.concatenate([np.zeros(len(local), bool), np.ones(len(extra_local), bool)]),
    )


def _top_up(
    shown: npt.NDArray[np.bool_], rate: npt.NDArray[np.float32], least: IntArray, rng: np.random.Generator
) -> None:
    """Show more posts to the rare users below ``least`` distinct posts, picked by rate (Gumbel top-k)."""
    short = np.flatnonzero(shown.sum(axis=1) < least)
    for row in short:
        with np.errstate(divide="ignore"):
            keys = np.log(rate[row]) - np.log(-np.log(rng.random(rate.shape[1])))
        keys[shown[row]] = -np.inf
        missing = int(least[row] - shown[row].sum())
        shown[row, np.argpartition(-keys, missing)[:missing]] = True


def _pair_seconds(
    truth: WorldTruth,
    sampler: Sampler,
    user: IntArray,
    own_days: npt.NDArray[np.bool_],
    post: IntArray,
    rng: np.random.Generator,
) -> IntArray:
    """A view time for each shown pair: a day from the pair's intensity, a minute from the daily shape."""
    day = np.empty(len(post), dtype=np.int64)
    shared = ~own_days
    day[shared] = _shared_pair_days(sampler, post[shared], rng)
    if own_days.any():
        day[own_days] = _active_pair_days(truth, sampler, user[own_days], post[own_days], rng)
    minute = np.searchsorted(sampler.day_minute_cdf, rng.random(len(post)), side="right")
    # Up to hh:mm:58, so a like one second later still falls on the same day, inside the period.
    seconds = day * 86_400 + (FIRST_MINUTE + minute) * 60 + rng.integers(0, 59, len(post))
    return np.asarray(seconds, dtype=np.int64)


def _shared_pair_days(sampler: Sampler, post: IntArray, rng: np.random.Generator) -> IntArray:
    """Days of pairs whose user follows the global day weights: from the post's intensity over the period."""
    order = np.argsort(post, kind="stable")
    day = np.empty(len(post), dtype=np.int64)
    # Sorted keys make the search walk the table once instead of jumping around it.
    sorted_keys = post[order] + rng.random(len(post))
    day[order] = np.searchsorted(sampler.post_day_cdf, sorted_keys, side="right") - post[order] * len(sampler.daily)
    return day


def _active_pair_days(
    truth: WorldTruth, sampler: Sampler, user: IntArray, post: IntArray, rng: np.random.Generator
) -> IntArray:
    """Days of pairs whose user has active days: one of them, by day weight x the post's share that day.

    Pairs are taken together by their user's number of active days, so each table is exactly as wide as needed.
    """
    first = truth.user_day_ptr[user]
    count = truth.user_day_ptr[user + 1] - first
    day = np.empty(len(post), dtype=np.int64)
    for width in np.unique(count).tolist():
        pairs = np.flatnonzero(count == width)
        entries = first[pairs, None] + np.arange(width)[None, :]
        days, weights = truth.user_days[entries], truth.user_day_weights[entries]
        mass = weights * sampler.daily[days, post[pairs, None]]
        # A pair shown only by the top-up may have no share on the user's days: its day follows the weights alone.
        mass = np.where(mass.sum(axis=1, keepdims=True) > 0, mass, weights)
        cdf = np.cumsum(mass, axis=1)
        pick = (cdf < rng.random(len(pairs))[:, None] * cdf[:, -1:]).sum(axis=1)
        day[pairs] = days[np.arange(len(pairs)), np.minimum(pick, width - 1)]
    return day


def _reshows(
    sampler: Sampler,
    local: IntArray,
    post: IntArray,
    second: IntArray,
    repeats: IntArray,
    own_days: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray, IntArray]:
    """``repeats[u]`` re-shows per user of posts it already viewed, each at a later minute (the same day for
    users with active days)."""
    counts = np.bincount(local, minlength=len(repeats))
    repeats = np.where(counts > 0, repeats, 0)
    owner = np.repeat(np.arange(len(repeats)), repeats)
    source = segment_starts(counts)[owner] + (rng.random(len(owner)) * counts[owner]).astype(np.int64)
    later = _later_seconds(sampler, second[source], rng)
    own = own_days[owner]
    if own.any():
        later[own] = _same_day_later(second[source][own], rng)
    return owner, post[source], later


def _same_day_later(after: IntArray, rng: np.random.Generator) -> IntArray:
    """A second after each of ``after`` on the same day (views end by 23:59:58, so there is always one)."""
    day_end = after // 86_400 * 86_400 + 86_399
    return np.asarray(after + 1 + (rng.random(len(after)) * (day_end - after)).astype(np.int64), dtype=np.int64)


def _later_seconds(sampler: Sampler, after: IntArray, rng: np.random.Generator) -> IntArray:
    """A time drawn from the view-time distribution, restricted to minutes after ``after``."""
    cdf = sampler.period_minute_cdf
    day, clock_minute = after // 86_400, (after % 86_400) // 60 - FIRST_MINUTE
    grid = np.minimum(day * MINUTES_PER_DAY + clock_minute + 1, len(cdf) - 1)
    low = np.where(grid > 0, cdf[grid - 1], 0.0)
    minute = np.clip(np.searchsorted(cdf, low + rng.random(len(after)) * (1 - low), side="right"), grid, len(cdf) - 1)
    later = (minute // MINUTES_PER_DAY) * 86_400 + (FIRST_MINUTE + minute % MINUTES_PER_DAY) * 60
    return np.asarray(np.maximum(later + rng.integers(0, 60, len(after)), after + 1), dtype=np.int64)
