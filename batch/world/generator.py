"""The synthetic world: users, posts, the hidden truth, and the feed generated from it chunk by chunk.

``generate_world`` builds everything but the feed (small), calibrates the like model on a pilot chunk, and
``generate_feed`` then yields the feed one chunk of users at a time, so memory stays bounded at any scale. The
same scale, seed and world always give the same data. Modules: ``designs`` (the family of worlds and what each
plants), ``facts`` (the real facts and the scales), ``users``/``cities`` (demographics),
``posts``/``text``/``vocab`` (posts and texts), ``groups`` (the unit of taste below the topic), ``latent`` (tastes,
interests, quality, popularity, trends), ``communities`` (``collab``), ``hits`` (``popular``), ``activity``
(``bursty``), ``params`` and ``truth`` (the model and the oracle), ``views`` (exposure), ``feed`` (likes and rows),
``store`` (the truth in PostgreSQL).

The public API for other modules (both re-exported here)::

    truth = load_truth(engine)                     # the world last seeded into this database
    scores = oracle_scores(truth, user_ids, post_ids, start, end, seen_before=None)

``scores`` (users x posts, float32) is the probability that each user likes each post within ``[start, end)``:
the chance that the pair's single first view falls in the window times the like probability then. Ranking by it
is the ceiling for hit rate; pass ``seen_before`` (users x posts, True where the pair was viewed before
``start``) to condition on the realised history, which is the exact ceiling when a model sees the feed up to
``start`` (viewed posts are never liked later: the feed re-shows a post only as a never-liked repeat).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.world.activity import ActiveDays, generate_active_days, no_active_days
from batch.world.designs import DEFAULT_WORLD, Period, WorldDesign, resolve_world
from batch.world.dist import FloatArray, IntArray, hour_like_effect, hour_view_shape, sigmoid
from batch.world.facts import SCALES, WorldScale
from batch.world.feed import decide_likes, feed_frame, like_logits
from batch.world.groups import Grouping, hidden_grouping, subtopic_grouping, with_trending_group
from batch.world.hits import plant_hits
from batch.world.latent import generate_post_latent, generate_user_latent
from batch.world.posts import Posts, generate_posts
from batch.world.store import load_truth
from batch.world.truth import WorldParams, WorldTruth, oracle_scores
from batch.world.users import Users, generate_users
from batch.world.views import Sampler, Views, build_sampler, distinct_views, draw_views, solve_draws
from common.errors import ConfigError

__all__ = ["World", "generate_feed", "generate_world", "load_truth", "oracle_scores"]

log = logging.getLogger(__name__)

CHUNK_USERS = 2_000
"""Users per feed chunk; fixed, so the random streams and the data do not depend on memory or speed."""
EXPOSURE_TASTE_MIX = 0.9
EXPOSURE_TASTE_POWER = 3.5
TREND_AMPLITUDE = 150.0
_WEEKEND_BOOST = 0.12
_PERIOD_GROWTH = 0.2
_CALIBRATION_ROUNDS = 2
_CALIBRATION_VIEWS = 400_000
_STREAM_USERS, _STREAM_POSTS, _STREAM_LATENT, _STREAM_VIEWS, _STREAM_LIKES, _STREAM_ROWS = range(6)
# The streams of what only some worlds plant: the text world's data does not depend on them.
_STREAM_GROUPS, _STREAM_HITS, _STREAM_ACTIVITY = range(6, 9)


@dataclass(frozen=True, slots=True)
class World:
    """A generated world before its feed: the public tables, the truth and the plan of views per user."""

    design: WorldDesign
    scale: WorldScale
    users: Users
    posts: Posts
    truth: WorldTruth
    planned_views: IntArray
    sampler: Sampler

    @property
    def chunk_count(self) -> int:
        """How many feed chunks :func:`generate_feed` yields."""
        return -(-len(self.users) // CHUNK_USERS)


def resolve_scale(name: str) -> WorldScale:
    """The scale called ``name``; raises ConfigError listing the valid ones."""
    if name not in SCALES:
        raise ConfigError(f"unknown scale {name!r}: use one of {', '.join(SCALES)}")
    return SCALES[name]


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def generate_world(scale_name: str, seed: int, world_name: str = DEFAULT_WORLD) -> World:
    """Users, posts and the complete truth of a world, its like offsets calibrated on its first chunk of users."""
    design, scale = resolve_world(world_name), resolve_scale(scale_name)
    users = generate_users(_rng(seed, _STREAM_USERS), scale.users)
    posts = generate_posts(_rng(seed, _STREAM_POSTS), scale.posts)
    truth, planned = _draft_truth(design, scale, seed, users, posts)
    sampler = build_sampler(truth)
    truth = replace(truth, user_draws=_solve_all_draws(truth, sampler, planned))
    months, groups = calibrate_offsets(truth, _pilot_views(truth, sampler, planned, seed), design)
    truth = replace(truth, params=replace(truth.params, month_offsets=months, group_offsets=groups))
    log.info(
        "world generated: world=%s scale=%s seed=%d users=%d posts=%d month_offsets=%s",
        design.name,
        scale.name,
        seed,
        len(users),
        len(posts),
        [round(offset, 3) for offset in months],
    )
    return World(design, scale, users, posts, truth, planned, sampler)


def _grouping(design: WorldDesign, posts: Posts, seed: int) -> Grouping:
    if design.communities is not None:
        return hidden_grouping(_rng(seed, _STREAM_GROUPS), posts, design.communities)
    grouping = subtopic_grouping(posts)
    return with_trending_group(grouping) if design.hits is not None else grouping


def _draft_truth(
    design: WorldDesign, scale: WorldScale, seed: int, users: Users, posts: Posts
) -> tuple[WorldTruth, IntArray]:
    """The truth with zero offsets and draws (solved next), and each user's planned views."""
    rng = _rng(seed, _STREAM_LATENT)
    grouping = _grouping(design, posts, seed)
    user_latent = generate_user_latent(rng, users, grouping.group_topics, scale.views_factor, design.communities)
    post_latent = generate_post_latent(rng, len(posts), design.period.days)
    params = _params(design, scale, seed, grouping)
    days = _active_days(design, len(users), params, seed)
    truth = WorldTruth(
        params=params,
        user_id=users.user_id,
        user_draws=np.zeros(len(users)),
        user_bias=user_latent.bias,
        user_topic_taste=user_latent.topic_taste,
        user_group_taste=user_latent.group_taste,
        user_interest=user_latent.interest,
        user_day_ptr=days.ptr,
        user_days=days.days,
        user_day_weights=days.weights,
        post_id=posts.post_id,
        post_topic=posts.topic,
        post_subtopic=posts.subtopic,
        post_group=grouping.post_group,
        post_quality=post_latent.quality,
        post_popularity=post_latent.popularity,
        post_release_day=post_latent.release_day,
        post_trend_days=post_latent.trend_days,
        post_shown=post_latent.shown,
    )
    if design.hits is not None:
        truth = plant_hits(_rng(seed, _STREAM_HITS), truth, design.hits, len(grouping) - 1)
    return truth, user_latent.planned_views


def _active_days(design: WorldDesign, users: int, params: WorldParams, seed: int) -> ActiveDays:
    if design.bursts is None:
        return no_active_days(users)
    return generate_active_days(_rng(seed, _STREAM_ACTIVITY), users, np.array(params.day_weights), design.bursts)


def _params(design: WorldDesign, scale: WorldScale, seed: int, grouping: Grouping) -> WorldParams:
    period = design.period
    return WorldParams(
        world=design.name,
        scale=scale.name,
        seed=seed,
        period_start=period.start.date().isoformat(),
        period_days=period.days,
        month_day_starts=period.month_day_starts(),
        month_offsets=(0.0,) * len(period.month_like_rates),
        exposure_taste_mix=EXPOSURE_TASTE_MIX,
        exposure_taste_power=EXPOSURE_TASTE_POWER,
        trend_amplitude=TREND_AMPLITUDE,
        trend_rise_days=0.0,
        day_weights=tuple(_day_weights(period).tolist()),
        hour_view_shape=tuple(hour_view_shape().tolist()),
        hour_like_effect=tuple(hour_like_effect().tolist()),
        group_topics=tuple(grouping.group_topics.tolist()),
        group_names=grouping.group_names,
        group_offsets=(0.0,) * len(grouping),
        group_fixed_shares=(0.0,) * len(grouping),
    )


def _day_weights(period: Period) -> FloatArray:
    """A little more activity at weekends and a slow growth over the period."""
    days = np.arange(period.days)
    weekend = np.array([(period.start.weekday() + d) % 7 >= 5 for d in days])
    weights = (1 + _WEEKEND_BOOST * weekend) * (1 + _PERIOD_GROWTH * days / (period.days - 1))
    return np.asarray(weights / weights.sum())


def _chunk_users(world_size: int, index: int) -> IntArray:
    return np.arange(index * CHUNK_USERS, min((index + 1) * CHUNK_USERS, world_size), dtype=np.int64)


def _solve_all_draws(truth: WorldTruth, sampler: Sampler, planned: IntArray) -> FloatArray:
    draws = np.zeros(len(planned))
    for index in range(-(-len(planned) // CHUNK_USERS)):
        users = _chunk_users(len(planned), index)
        draws[users] = solve_draws(truth, sampler, users, distinct_views(sampler, planned[users]))
    return draws


def _pilot_views(truth: WorldTruth, sampler: Sampler, planned: IntArray, seed: int) -> Views:
    """The first chunk's views (as the feed will have them), for calibration."""
    users = _chunk_users(len(truth.user_id), 0)
    return draw_views(truth, sampler, users, planned[users], _rng(seed, _STREAM_VIEWS, 0))


def calibrate_offsets(
    truth: WorldTruth, views: Views, design: WorldDesign
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Month and group like offsets that give the world's like rate per month and each group's target rate.

    Solved on a pilot sample of views, alternating between the two sets a few times (each is a bisection).
    """
    every = slice(None, None, max(1, len(views.user) // _CALIBRATION_VIEWS))
    logits, repeat = like_logits(truth, views)[every], views.repeat[every]
    month = truth.params.day_month(views.second[every] // 86_400)
    group = truth.post_group[views.post[every]]
    month_targets = np.array(design.period.month_like_rates)
    overall = float(np.bincount(month, minlength=len(month_targets)) @ month_targets / len(month))
    group_targets = _group_targets(truth, design, group, overall)
    months, groups = np.zeros(len(month_targets)), np.zeros(len(group_targets))
    for _ in range(_CALIBRATION_ROUNDS):
        groups = solve_group_offsets(logits + months[month], group, repeat, group_targets)
        months = solve_group_offsets(logits + groups[group], month, repeat, month_targets)
    return tuple(months.tolist()), tuple(groups.tolist())


def _group_targets(truth: WorldTruth, design: WorldDesign, group: IntArray, overall: float) -> FloatArray:
    """Every group at the overall like rate; in ``popular``, the trending group at the hits' rate and the others
    lower, so the overall rate stays."""
    fixed = np.array(truth.params.group_fixed_shares) > 0
    if design.hits is None or not fixed.any():
        return np.full(len(fixed), overall)
    views = np.bincount(group, minlength=len(fixed))
    hit_views = views[fixed].sum()
    others = (overall * views.sum() - design.hits.like_rate * hit_views) / max(views.sum() - hit_views, 1)
    return np.where(fixed, design.hits.like_rate, others)


def solve_group_offsets(
    logits: FloatArray, group: IntArray, repeat: npt.NDArray[np.bool_], targets: FloatArray
) -> FloatArray:
    """Per group, the logit offset at which likes / views equals its target (re-shows count as unliked views)."""
    views = np.maximum(np.bincount(group, minlength=len(targets)), 1)
    first = ~repeat
    low, high = np.full(len(targets), -15.0), np.full(len(targets), 10.0)
    for _ in range(32):
        middle = (low + high) / 2
        liked = np.bincount(group[first], weights=sigmoid(logits[first] + middle[group[first]]), minlength=len(targets))
        too_low = liked / views < targets
        low, high = np.where(too_low, middle, low), np.where(too_low, high, middle)
    return np.asarray((low + high) / 2)


def generate_feed(world: World) -> Iterator[pl.DataFrame]:
    """The feed, one chunk of users at a time (rows of each chunk sorted by user and time)."""
    seed = world.truth.params.seed
    for index in range(world.chunk_count):
        users = _chunk_users(len(world.users), index)
        planned = world.planned_views[users]
        views = draw_views(world.truth, world.sampler, users, planned, _rng(seed, _STREAM_VIEWS, index))
        liked = decide_likes(world.truth, views, _rng(seed, _STREAM_LIKES, index))
        yield feed_frame(world.truth, views, liked, _rng(seed, _STREAM_ROWS, index))


def generate_tables(
    scale_name: str, seed: int, world_name: str = DEFAULT_WORLD
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, WorldTruth]:
    """The whole world in memory: ``user_data``, ``post_text_df``, ``feed_data`` frames and the truth.

    For tests and small scales; ``postrec seed`` streams the feed instead.
    """
    world = generate_world(scale_name, seed, world_name)
    feed = pl.concat(list(generate_feed(world)))
    return world.users.to_frame(), world.posts.to_frame(), feed, world.truth
