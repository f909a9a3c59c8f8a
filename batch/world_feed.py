"""The feed of one chunk of users, drawn from the truth's exposure and like model (vectorised numpy).

Steps per chunk: draw candidate views until each user has its planned number of distinct posts, keep the first
view of each pair, thin to the plan, add the 4% re-shows, then decide likes on first views. Times are drawn on a
grid of every minute of the period (day weight x hour shape), so every view falls between 06:00 and 23:59.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.world_dist import FloatArray, IntArray, sample_like_delays, segment_starts, sigmoid
from batch.world_facts import FIRST_MINUTE, PERIOD_DAYS, PERIOD_START, REPEAT_VIEW_SHARE
from batch.world_truth import WorldTruth, daily_post_exposure, day_month, subtopic_exposure
from common.columns import Action, Col

MINUTES_PER_DAY = 24 * 60 - FIRST_MINUTE
_MAX_DISTINCT_SHARE = 0.6
"""No user views more than this share of the shown posts (matters only at small scales)."""
_MAX_DRAW_ROUNDS = 12
_EPOCH_US = int((PERIOD_START - PERIOD_START.replace(year=1970, month=1, day=1)).total_seconds()) * 1_000_000


@dataclass(frozen=True, slots=True)
class Sampler:
    """Lookup tables shared by every chunk: the minute grid's CDF and each day's post CDF per sub-topic."""

    minute_cdf: FloatArray
    post_order: IntArray
    post_cdf: FloatArray
    n_subtopics: int
    max_distinct: int


@dataclass(frozen=True, slots=True)
class Views:
    """One chunk's views: user rows (into the truth), post rows, seconds since the period start, re-show flag."""

    user: IntArray
    post: IntArray
    second: IntArray
    repeat: npt.NDArray[np.bool_]
    draws: IntArray
    keep: FloatArray


def build_sampler(truth: WorldTruth) -> Sampler:
    """Precompute the tables :func:`draw_views` searches."""
    shape = np.repeat(np.array(truth.params.hour_view_shape) / 60, 60)
    minute_mass = (np.array(truth.params.day_weights)[:, None] * shape[None, :]).ravel()
    order = np.argsort(truth.post_subtopic, kind="stable")
    return Sampler(
        minute_cdf=_closed_cdf(minute_mass),
        post_order=order,
        post_cdf=_daily_post_cdf(truth, order),
        n_subtopics=len(truth.params.subtopic_topics),
        max_distinct=max(1, int(_MAX_DISTINCT_SHARE * truth.post_shown.sum())),
    )


def _closed_cdf(mass: FloatArray) -> FloatArray:
    cdf = np.cumsum(mass)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def _daily_post_cdf(truth: WorldTruth, order: IntArray) -> FloatArray:
    """Days x posts (sub-topic order), flattened: day d, sub-topic s spans (d*S + s, d*S + s + 1]."""
    n_sub = len(truth.params.subtopic_topics)
    subtopic = truth.post_subtopic[order]
    counts = np.bincount(subtopic, minlength=n_sub)
    starts = segment_starts(counts)
    cumulative = np.cumsum(daily_post_exposure(truth)[:, order], axis=1)
    before = np.where(starts[subtopic] > 0, cumulative[:, np.maximum(starts[subtopic] - 1, 0)], 0.0)
    within = np.clip(cumulative - before, 0.0, 1.0)
    ends = (starts + counts - 1)[counts > 0]
    within[:, ends] = np.where(within[:, ends] > 0, 1.0, 0.0)
    offsets = np.arange(PERIOD_DAYS)[:, None] * n_sub + subtopic[None, :]
    return np.asarray(np.maximum.accumulate((offsets + within).ravel()))


def draw_views(
    truth: WorldTruth, sampler: Sampler, users: IntArray, planned: IntArray, rng: np.random.Generator
) -> Views:
    """The views of ``users`` (truth rows) with ``planned`` views each, re-shows included."""
    repeats = np.round(planned * REPEAT_VIEW_SHARE).astype(np.int64)
    distinct = np.minimum(planned - repeats, sampler.max_distinct)
    exposure_cdf = _row_cdf(subtopic_exposure(truth, users))
    local, post, second, draws = _draw_distinct(sampler, exposure_cdf, distinct, rng)
    local, post, second, found = _thin(local, post, second, distinct, rng)
    extra_local, extra_post, extra_second = _reshows(sampler, local, post, second, repeats, rng)
    return Views(
        user=users[np.concatenate([local, extra_local])],
        post=np.concatenate([post, extra_post]),
        second=np.concatenate([second, extra_second]),
        repeat=np.concatenate([np.zeros(len(local), bool), np.ones(len(extra_local), bool)]),
        draws=draws,
        keep=np.minimum(distinct, found) / np.maximum(found, 1),
    )


def _row_cdf(probabilities: FloatArray) -> FloatArray:
    """Row-wise CDFs laid end to end: row r spans (r, r + 1]."""
    cdf = np.cumsum(probabilities, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    return np.asarray(np.maximum.accumulate((cdf + np.arange(len(cdf))[:, None]).ravel()))


def _draw_candidates(
    sampler: Sampler, exposure_cdf: FloatArray, local: IntArray, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Post row and second of one candidate view per entry of ``local`` (chunk-local user index)."""
    n_sub = sampler.n_subtopics
    minute = np.searchsorted(sampler.minute_cdf, rng.random(len(local)), side="right")
    day = minute // MINUTES_PER_DAY
    subtopic = np.searchsorted(exposure_cdf, local + rng.random(len(local)), side="right") - local * n_sub
    position = np.searchsorted(sampler.post_cdf, day * n_sub + subtopic + rng.random(len(local)), side="right")
    post = sampler.post_order[position % len(sampler.post_order)]
    second = day * 86_400 + (FIRST_MINUTE + minute % MINUTES_PER_DAY) * 60 + rng.integers(0, 60, len(local))
    return post.astype(np.int64), second.astype(np.int64)


def _draw_distinct(
    sampler: Sampler, exposure_cdf: FloatArray, distinct: IntArray, rng: np.random.Generator
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Draw rounds of candidates until each user has ``distinct`` different posts (or rounds run out)."""
    draws = np.zeros(len(distinct), dtype=np.int64)
    local = post = second = np.zeros(0, dtype=np.int64)
    wanted = np.ceil(distinct * 1.1).astype(np.int64) + 2
    for _ in range(_MAX_DRAW_ROUNDS):
        new_local = np.repeat(np.arange(len(distinct)), wanted)
        new_post, new_second = _draw_candidates(sampler, exposure_cdf, new_local, rng)
        draws += wanted
        local, post, second = _first_views(
            np.concatenate([local, new_local]), np.concatenate([post, new_post]), np.concatenate([second, new_second])
        )
        deficit = np.maximum(distinct - np.bincount(local, minlength=len(distinct)), 0)
        if not deficit.any():
            break
        wanted = np.where(deficit > 0, 2 * deficit + 2, 0)
    return local, post, second, draws


def _first_views(local: IntArray, post: IntArray, second: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Keep the earliest view of each (user, post) pair."""
    order = np.lexsort((second, post, local))
    local, post, second = local[order], post[order], second[order]
    first = np.ones(len(local), dtype=bool)
    first[1:] = (local[1:] != local[:-1]) | (post[1:] != post[:-1])
    return local[first], post[first], second[first]


def _thin(
    local: IntArray, post: IntArray, second: IntArray, distinct: IntArray, rng: np.random.Generator
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Keep a random ``distinct[u]`` of each user's distinct posts; also return how many each user had."""
    found = np.bincount(local, minlength=len(distinct))
    order = np.lexsort((rng.random(len(local)), local))
    rank = np.arange(len(local)) - segment_starts(found)[local[order]]
    kept = order[rank < distinct[local[order]]]
    kept.sort()
    return local[kept], post[kept], second[kept], found


def _reshows(
    sampler: Sampler, local: IntArray, post: IntArray, second: IntArray, repeats: IntArray, rng: np.random.Generator
) -> tuple[IntArray, IntArray, IntArray]:
    """``repeats[u]`` re-shows per user of posts it already viewed, each at a later minute."""
    counts = np.bincount(local, minlength=len(repeats))
    repeats = np.where(counts > 0, repeats, 0)
    owner = np.repeat(np.arange(len(repeats)), repeats)
    source = segment_starts(counts)[owner] + (rng.random(len(owner)) * counts[owner]).astype(np.int64)
    return owner, post[source], _later_seconds(sampler, second[source], rng)


def _later_seconds(sampler: Sampler, after: IntArray, rng: np.random.Generator) -> IntArray:
    """A time drawn from the view-time distribution, restricted to minutes after ``after``."""
    day, clock_minute = after // 86_400, (after % 86_400) // 60 - FIRST_MINUTE
    grid = np.minimum(day * MINUTES_PER_DAY + clock_minute + 1, len(sampler.minute_cdf) - 1)
    low = np.where(grid > 0, sampler.minute_cdf[grid - 1], 0.0)
    minute = np.searchsorted(sampler.minute_cdf, low + rng.random(len(after)) * (1 - low), side="right")
    minute = np.clip(minute, grid, len(sampler.minute_cdf) - 1)
    later = (minute // MINUTES_PER_DAY) * 86_400 + (FIRST_MINUTE + minute % MINUTES_PER_DAY) * 60
    return np.asarray(np.maximum(later + rng.integers(0, 60, len(after)), after + 1), dtype=np.int64)


def like_logits(truth: WorldTruth, views: Views, month_offsets: FloatArray | None = None) -> FloatArray:
    """Like logit of each view at its time; without month offsets when ``month_offsets`` is None."""
    user, post = views.user, views.post
    hour = (views.second % 86_400) // 3600 - FIRST_MINUTE // 60
    logits = (
        truth.user_bias[user]
        + truth.user_topic_taste[user, truth.post_topic[post]]
        + truth.user_subtopic_taste[user, truth.post_subtopic[post]]
        + truth.post_quality[post]
        + np.array(truth.params.hour_like_effect)[hour]
    )
    if month_offsets is not None:
        logits += month_offsets[day_month(views.second // 86_400)]
    return np.asarray(logits)


def decide_likes(truth: WorldTruth, views: Views, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Which views are liked: first views only, each with its like probability."""
    probability = sigmoid(like_logits(truth, views, np.array(truth.params.month_offsets)))
    return (rng.random(len(views.user)) < probability) & ~views.repeat


def feed_frame(truth: WorldTruth, views: Views, liked: npt.NDArray[np.bool_], rng: np.random.Generator) -> pl.DataFrame:
    """``feed_data`` rows of one chunk: every view, and a like row a short delay after each liked view."""
    like_second = views.second[liked] + np.round(sample_like_delays(rng, int(liked.sum()))).astype(np.int64)
    user_id = truth.user_id[np.concatenate([views.user, views.user[liked]])]
    frame = pl.DataFrame(
        {
            Col.TIMESTAMP: np.concatenate([views.second, like_second]) * 1_000_000 + _EPOCH_US,
            Col.USER_ID: user_id.astype(np.int32),
            Col.POST_ID: truth.post_id[np.concatenate([views.post, views.post[liked]])].astype(np.int32),
            Col.ACTION: np.repeat(np.array([Action.VIEW, Action.LIKE]), [len(views.user), int(liked.sum())]),
            Col.TARGET: np.concatenate([liked, np.zeros(int(liked.sum()), bool)]).astype(np.int32),
        }
    )
    frame = frame.with_columns(pl.col(Col.TIMESTAMP).cast(pl.Datetime("us")))
    return frame.sort(Col.USER_ID, Col.TIMESTAMP, maintain_order=True)
