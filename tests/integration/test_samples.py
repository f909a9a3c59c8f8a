"""The user sample of the training rows, in PostgreSQL: whole users kept, about the share asked, by seed."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from sqlalchemy.engine import Engine

from batch.pipeline.samples import load_window_views
from common.columns import Col
from tests.integration.test_extract import insert

START, END = datetime(2021, 11, 1), datetime(2021, 11, 8)
USER_IDS = range(200, 2200)


def world(engine: Engine) -> None:
    users = [(user, 25, "Moscow", "Russia", 0, 1, "Android", "ads") for user in USER_IDS]
    posts = [(1, "one", "movie"), (2, "two", "covid")]
    feed = []
    for user in USER_IDS:
        feed += [(START + timedelta(hours=1), user, 1, "view", 0), (START + timedelta(days=2), user, 2, "view", 1)]
        feed += [(START + timedelta(days=2, minutes=2), user, 2, "like", 0)]  # a like row is never a sample row
        feed += [(START - timedelta(seconds=1), user, 2, "view", 0), (END, user, 1, "view", 0)]  # outside
    insert(engine, users, posts, feed)


def sampled(engine: Engine, per_mille: int, seed: int) -> pl.DataFrame:
    return load_window_views(engine, START, END, per_mille, seed)


def test_the_sample_keeps_whole_users_in_about_the_share_asked_for(engine: Engine) -> None:
    world(engine)

    quarter = sampled(engine, per_mille=250, seed=1)

    per_user = quarter.group_by(Col.USER_ID).len()
    assert 0.2 * len(USER_IDS) < per_user.height < 0.3 * len(USER_IDS)
    assert (per_user["len"] == 2).all()  # both views in the window, neither outside it nor the like
    assert quarter[Col.TIMESTAMP].min() >= START and quarter[Col.TIMESTAMP].max() < END
    everyone = sampled(engine, per_mille=1000, seed=1)
    assert everyone[Col.USER_ID].n_unique() == len(USER_IDS) and everyone.height == 2 * len(USER_IDS)


def test_a_seed_picks_the_same_users_and_another_seed_others(engine: Engine) -> None:
    world(engine)

    first = set(sampled(engine, 250, seed=1)[Col.USER_ID].to_list())
    again = set(sampled(engine, 250, seed=1)[Col.USER_ID].to_list())
    other = set(sampled(engine, 250, seed=2)[Col.USER_ID].to_list())

    assert first == again
    assert other != first and len(other & first) < 0.5 * len(first)
