"""The synthetic world: users, posts, the hidden truth, and the feed generated from it chunk by chunk.

``generate_world`` builds everything but the feed (small), calibrates the like model on a pilot chunk, and
``generate_feed`` then yields the feed one chunk of users at a time, so memory stays bounded at any scale. The
same scale and seed always give the same world. Modules: ``world_facts`` (the real facts and the scales),
``world_users``/``world_cities`` (demographics), ``world_posts``/``world_text``/``world_vocab`` (posts and texts),
``world_latent`` (tastes, interests, quality, popularity, trends), ``world_truth`` (the model and the oracle),
``world_views`` (exposure), ``world_feed`` (likes and rows), ``world_store`` (the truth in PostgreSQL).

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

from batch.world.dist import FloatArray, IntArray, hour_like_effect, hour_view_shape, sigmoid
from batch.world.facts import MONTH_LIKE_RATES, MONTH_OF_DAY_STARTS, PERIOD_DAYS, PERIOD_START, SCALES, WorldScale
from batch.world.feed import decide_likes, feed_frame, like_logits
from batch.world.latent import generate_post_latent, generate_user_latent
from batch.world.posts import SUBTOPIC_TOPICS, SUBTOPICS, Posts, generate_posts
from batch.world.store import load_truth
from batch.world.truth import WorldParams, WorldTruth, day_month, oracle_scores, subtopic_exposure
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


def resolve_scale(name: str) -> WorldScale:
    """The scale called ``name``; raises ConfigError listing the valid ones."""
    if name not in SCALES:
        raise ConfigError(f"unknown scale {name!r}: use one of {', '.join(SCALES)}")
    return SCALES[name]


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def generate_world(scale_name: str, seed: int) -> World:
    """Users, posts and the complete truth of a world, its like offsets calibrated on its first chunk of users."""
    scale = resolve_scale(scale_name)
    users = generate_users(_rng(seed, _STREAM_USERS), scale.users)
    posts = generate_posts(_rng(seed, _STREAM_POSTS), scale.posts)
    truth, planned = _draft_truth(scale, seed, users, posts)
    sampler = build_sampler(truth)
    truth = replace(truth, user_draws=_solve_all_draws(truth, sampler, planned))
    months, subtopics = calibrate_offsets(truth, _pilot_views(truth, sampler, planned, seed))
    truth = replace(truth, params=replace(truth.params, month_offsets=months, subtopic_offsets=subtopics))
    log.info(
        "world generated: scale=%s seed=%d users=%d posts=%d month_offsets=%s",
        scale.name,
        seed,
        len(users),
        len(posts),
        [round(offset, 3) for offset in months],
    )
    return World(scale, users, posts, truth, planned, sampler)


def _draft_truth(scale: WorldScale, seed: int, users: Users, posts: Posts) -> tuple[WorldTruth, IntArray]:
    """The truth with zero offsets and draws (solved next), and each user's planned views."""
    rng = _rng(seed, _STREAM_LATENT)
    user_latent = generate_user_latent(rng, users, SUBTOPIC_TOPICS, scale.views_factor)
    post_latent = generate_post_latent(rng, len(posts))
    truth = WorldTruth(
        params=_params(scale, seed),
        user_id=users.user_id,
        user_draws=np.zeros(len(users)),
        user_bias=user_latent.bias,
        user_topic_taste=user_latent.topic_taste,
        user_subtopic_taste=user_latent.subtopic_taste,
        user_interest=user_latent.interest,
        post_id=posts.post_id,
        post_topic=posts.topic,
        post_subtopic=posts.subtopic,
        post_quality=post_latent.quality,
        post_popularity=post_latent.popularity,
        post_release_day=post_latent.release_day,
        post_trend_days=post_latent.trend_days,
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
        subtopic_offsets=(0.0,) * len(SUBTOPICS),
    )


def _day_weights() -> FloatArray:
    """A little more activity at weekends and a slow growth over the period."""
    days = np.arange(PERIOD_DAYS)
    weekend = np.array([(PERIOD_START.weekday() + d) % 7 >= 5 for d in days])
    weights = (1 + _WEEKEND_BOOST * weekend) * (1 + _PERIOD_GROWTH * days / (PERIOD_DAYS - 1))
    return np.asarray(weights / weights.sum())


def _chunk_users(world_size: int, index: int) -> IntArray:
    return np.arange(index * CHUNK_USERS, min((index + 1) * CHUNK_USERS, world_size), dtype=np.int64)


def _solve_all_draws(truth: WorldTruth, sampler: Sampler, planned: IntArray) -> FloatArray:
    draws = np.zeros(len(planned))
    for index in range(-(-len(planned) // CHUNK_USERS)):
        users = _chunk_users(len(planned), index)
        draws[users] = solve_draws(sampler, subtopic_exposure(truth, users), distinct_views(sampler, planned[users]))
    return draws


def _pilot_views(truth: WorldTruth, sampler: Sampler, planned: IntArray, seed: int) -> Views:
    """The first chunk's views (as the feed will have them), for calibration."""
    users = _chunk_users(len(truth.user_id), 0)
    return draw_views(truth, sampler, users, planned[users], _rng(seed, _STREAM_VIEWS, 0))


def calibrate_offsets(truth: WorldTruth, views: Views) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Month and sub-topic like offsets that give the real like rate per month and one rate for every sub-topic.

    Solved on a pilot sample of views, alternating between the two sets a few times (each is a bisection).
    """
    every = slice(None, None, max(1, len(views.user) // _CALIBRATION_VIEWS))
    logits, repeat = like_logits(truth, views)[every], views.repeat[every]
    month = day_month(views.second[every] // 86_400)
    subtopic = truth.post_subtopic[views.post[every]]
    month_targets = np.array(MONTH_LIKE_RATES)
    overall = float(np.bincount(month, minlength=len(month_targets)) @ month_targets / len(month))
    months, subtopics = np.zeros(len(month_targets)), np.zeros(len(truth.params.subtopic_topics))
    for _ in range(_CALIBRATION_ROUNDS):
        subtopics = solve_group_offsets(logits + months[month], subtopic, repeat, np.full(len(subtopics), overall))
        months = solve_group_offsets(logits + subtopics[subtopic], month, repeat, month_targets)
    return tuple(months.tolist()), tuple(subtopics.tolist())


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


def generate_tables(scale_name: str, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, WorldTruth]:
    """The whole world in memory: ``user_data``, ``post_text_df``, ``feed_data`` frames and the truth.

    For tests and small scales; ``postrec seed`` streams the feed instead.
    """
    world = generate_world(scale_name, seed)
    feed = pl.concat(list(generate_feed(world)))
    return world.users.to_frame(), world.posts.to_frame(), feed, world.truth
