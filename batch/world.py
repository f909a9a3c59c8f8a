"""The synthetic world: users, posts, the hidden truth, and the feed generated from it chunk by chunk.

``generate_world`` builds everything but the feed (small), calibrates the like model on a pilot chunk, and
``generate_feed`` then yields the feed one chunk of users at a time, so memory stays bounded at any scale. The
same scale and seed always give the same world. The public API for other modules:

* :func:`batch.world_store.load_truth` reads a seeded world's truth back from PostgreSQL;
* :func:`batch.world_truth.oracle_scores` gives the true like probability of users x posts in a window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from batch.world_dist import FloatArray, IntArray, hour_like_effect, hour_view_shape, sigmoid
from batch.world_facts import MONTH_LIKE_RATES, MONTH_OF_DAY_STARTS, PERIOD_DAYS, PERIOD_START, SCALES, WorldScale
from batch.world_feed import Sampler, Views, build_sampler, decide_likes, draw_views, feed_frame, like_logits
from batch.world_latent import generate_post_latent, generate_user_latent
from batch.world_posts import SUBTOPIC_TOPICS, SUBTOPICS, Posts, generate_posts
from batch.world_store import load_truth
from batch.world_truth import WorldParams, WorldTruth, day_month, oracle_scores
from batch.world_users import Users, generate_users
from common.errors import ConfigError

__all__ = ["World", "generate_feed", "generate_world", "load_truth", "oracle_scores"]

log = logging.getLogger(__name__)

CHUNK_USERS = 2_000
"""Users per feed chunk; fixed, so the random streams and the data do not depend on memory or speed."""
EXPOSURE_TASTE_MIX = 0.6
EXPOSURE_TASTE_POWER = 1.0
TREND_AMPLITUDE = 4.0
_WEEKEND_BOOST = 0.12
_PERIOD_GROWTH = 0.2
_STREAM_USERS, _STREAM_POSTS, _STREAM_LATENT, _STREAM_VIEWS, _STREAM_LIKES, _STREAM_ROWS = range(6)


@dataclass(frozen=True, slots=True)
class World:
    """A generated world before its feed: the public tables, the truth and the plan of views per user."""

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


@dataclass(frozen=True, slots=True)
class FeedChunk:
    """``feed_data`` rows of one chunk of users, and what the truth needs to know about how they were drawn."""

    frame: pl.DataFrame
    users: IntArray
    draws: IntArray
    keep: FloatArray


def resolve_scale(name: str) -> WorldScale:
    """The scale called ``name``; raises ConfigError listing the valid ones."""
    if name not in SCALES:
        raise ConfigError(f"unknown scale {name!r}: use one of {', '.join(SCALES)}")
    return SCALES[name]


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def generate_world(scale_name: str, seed: int) -> World:
    """Users, posts and the truth of a world, with like offsets calibrated on its first chunk of users."""
    scale = resolve_scale(scale_name)
    users = generate_users(_rng(seed, _STREAM_USERS), scale.users)
    posts = generate_posts(_rng(seed, _STREAM_POSTS), scale.posts)
    truth, planned = _draft_truth(scale, seed, users, posts)
    sampler = build_sampler(truth)
    pilot = _pilot_views(truth, sampler, planned, seed)
    offsets = calibrate_month_offsets(truth, pilot)
    log.info(
        "world generated: scale=%s seed=%d users=%d posts=%d offsets=%s",
        scale.name,
        seed,
        len(users),
        len(posts),
        [round(o, 3) for o in offsets],
    )
    truth = replace(truth, params=replace(truth.params, month_offsets=offsets))
    return World(scale, users, posts, truth, planned, sampler)


def _draft_truth(scale: WorldScale, seed: int, users: Users, posts: Posts) -> tuple[WorldTruth, IntArray]:
    """The truth with placeholder like offsets and draw counts, and each user's planned views."""
    rng = _rng(seed, _STREAM_LATENT)
    user_latent = generate_user_latent(rng, users, SUBTOPIC_TOPICS, scale.views_factor)
    post_latent = generate_post_latent(rng, len(posts))
    truth = WorldTruth(
        params=_params(scale, seed),
        user_id=users.user_id,
        user_draws=np.zeros(len(users)),
        user_keep=np.ones(len(users)),
        user_bias=user_latent.bias,
        user_topic_taste=user_latent.topic_taste,
        user_subtopic_taste=user_latent.subtopic_taste,
        post_id=posts.post_id,
        post_topic=posts.topic,
        post_subtopic=posts.subtopic,
        post_quality=post_latent.quality,
        post_popularity=post_latent.popularity,
        post_peak_day=post_latent.peak_day,
        post_trend_width=post_latent.trend_width,
        post_shown=post_latent.shown,
    )
    return truth, user_latent.planned_views


def _params(scale: WorldScale, seed: int) -> WorldParams:
    return WorldParams(
        scale=scale.name,
        seed=seed,
        month_offsets=(0.0,) * len(MONTH_OF_DAY_STARTS),
        exposure_taste_mix=EXPOSURE_TASTE_MIX,
        exposure_taste_power=EXPOSURE_TASTE_POWER,
        trend_amplitude=TREND_AMPLITUDE,
        day_weights=tuple(_day_weights().tolist()),
        hour_view_shape=tuple(hour_view_shape().tolist()),
        hour_like_effect=tuple(hour_like_effect().tolist()),
        subtopic_topics=tuple(SUBTOPIC_TOPICS.tolist()),
        subtopic_names=tuple(name for _, name in SUBTOPICS),
    )


def _day_weights() -> FloatArray:
    """A little more activity at weekends and a slow growth over the period."""
    days = np.arange(PERIOD_DAYS)
    weekend = np.array([(PERIOD_START.weekday() + d) % 7 >= 5 for d in days])
    weights = (1 + _WEEKEND_BOOST * weekend) * (1 + _PERIOD_GROWTH * days / (PERIOD_DAYS - 1))
    return np.asarray(weights / weights.sum())


def _chunk_users(world_size: int, index: int) -> IntArray:
    return np.arange(index * CHUNK_USERS, min((index + 1) * CHUNK_USERS, world_size), dtype=np.int64)


def _pilot_views(truth: WorldTruth, sampler: Sampler, planned: IntArray, seed: int) -> Views:
    users = _chunk_users(len(truth.user_id), 0)
    return draw_views(truth, sampler, users, planned[users], _rng(seed, _STREAM_VIEWS, 0))


def calibrate_month_offsets(truth: WorldTruth, views: Views) -> tuple[float, ...]:
    """Per month, the like logit offset that gives the real like rate among all views (bisection)."""
    logits = like_logits(truth, views)
    month = day_month(views.second // 86_400)
    offsets = []
    for index, target in enumerate(MONTH_LIKE_RATES):
        in_month = month == index
        first_views = logits[in_month & ~views.repeat]
        offsets.append(_solve_offset(first_views, max(int(in_month.sum()), 1), target))
    return tuple(offsets)


def _solve_offset(logits: FloatArray, views: int, target: float) -> float:
    low, high = -15.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        if sigmoid(logits + middle).sum() / views < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def generate_feed(world: World) -> Iterator[FeedChunk]:
    """The feed, one chunk of users at a time (rows of each chunk sorted by user and time)."""
    seed = world.truth.params.seed
    for index in range(world.chunk_count):
        users = _chunk_users(len(world.users), index)
        views = draw_views(
            world.truth, world.sampler, users, world.planned_views[users], _rng(seed, _STREAM_VIEWS, index)
        )
        liked = decide_likes(world.truth, views, _rng(seed, _STREAM_LIKES, index))
        frame = feed_frame(world.truth, views, liked, _rng(seed, _STREAM_ROWS, index))
        yield FeedChunk(frame, users, views.draws, views.keep)


def completed_truth(world: World, chunks: list[tuple[IntArray, IntArray, FloatArray]]) -> WorldTruth:
    """The truth with each user's draw count and kept share, from (users, draws, keep) of every chunk."""
    draws, keep = np.zeros(len(world.users)), np.ones(len(world.users))
    for users, chunk_draws, chunk_keep in chunks:
        draws[users], keep[users] = chunk_draws, chunk_keep
    return replace(world.truth, user_draws=draws, user_keep=keep)
