"""The feed generator: views per plan, re-shows, times of day, likes, determinism."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from batch.world.facts import FIRST_MINUTE, PERIOD_DAYS, REPEAT_VIEW_SHARE
from batch.world.generator import _chunk_users, generate_feed, generate_world
from batch.world.views import distinct_views, draw_views


@pytest.fixture(scope="module")
def world():
    return generate_world("tiny", 21)


@pytest.fixture(scope="module")
def views(world):
    users = _chunk_users(len(world.users), 0)
    return draw_views(world.truth, world.sampler, users, world.planned_views[users], np.random.default_rng(0))


def test_users_see_their_planned_number_of_distinct_posts_on_average(world, views):
    first = views.user[~views.repeat]
    realised = np.bincount(first, minlength=len(world.users))
    planned = distinct_views(world.sampler, world.planned_views)
    assert realised.sum() == pytest.approx(planned.sum(), rel=0.03)
    assert np.corrcoef(realised, planned)[0, 1] > 0.8


def test_a_pair_is_shown_once_and_reshows_come_later(views):
    first = pl.DataFrame({"u": views.user, "p": views.post, "s": views.second, "r": views.repeat})
    once = first.filter(~pl.col("r"))
    assert once.select(pl.struct("u", "p").is_unique().all()).item()
    reshows = first.filter(pl.col("r")).join(once, on=["u", "p"], suffix="_first")
    assert reshows.height == first.filter(pl.col("r")).height
    assert (reshows["s"] > reshows["s_first"]).all()
    assert views.repeat.mean() == pytest.approx(REPEAT_VIEW_SHARE, abs=0.005)


def test_views_fall_between_six_and_midnight_inside_the_period(views):
    clock = views.second % 86_400
    assert clock.min() >= FIRST_MINUTE * 60
    assert views.second.max() < PERIOD_DAYS * 86_400


def test_never_shown_posts_never_appear(world, views):
    assert world.truth.post_shown[views.post].all()


def test_the_same_seed_gives_the_same_feed_and_another_seed_does_not():
    first = pl.concat(list(generate_feed(generate_world("tiny", 5))))
    again = pl.concat(list(generate_feed(generate_world("tiny", 5))))
    other = pl.concat(list(generate_feed(generate_world("tiny", 6))))
    assert first.equals(again)
    assert not first.equals(other)


def test_likes_follow_liked_views_and_repeats_are_never_liked(world):
    feed = pl.concat(list(generate_feed(world)))
    views = feed.filter(pl.col("action") == "view")
    likes = feed.filter(pl.col("action") == "like")
    assert likes["target"].sum() == 0
    assert views["target"].sum() == likes.height
    pairs = likes.join(views.filter(pl.col("target") == 1), on=["user_id", "post_id"], suffix="_view")
    assert pairs.height == likes.height
    assert (pairs["timestamp"] > pairs["timestamp_view"]).all()
    liked_views = views.filter(pl.col("target") == 1)
    assert liked_views.select(pl.struct("user_id", "post_id").is_unique().all()).item()
