"""``postrec seed --scale tiny`` against a real PostgreSQL: contents, invariants, determinism, replacement."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.world.facts import MIN_VIEWS, SCALES
from batch.world.generator import generate_world
from batch.world.seed import seed_database
from batch.world.store import load_truth
from batch.world.truth import WorldTruth, oracle_scores
from common.columns import Table
from postrec.cli import main


def _scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def _checksum(engine: Engine) -> str:
    return str(
        _scalar(
            engine,
            f"SELECT sum(hashtext(timestamp::text || user_id || '/' || post_id || action || target)::bigint)"
            f" FROM {Table.FEED}",
        )
    )


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    seed_database(engine, "tiny", 7)
    return engine


def test_tables_have_the_scale_sizes(seeded: Engine) -> None:
    assert _scalar(seeded, f"SELECT count(*) FROM {Table.USERS}") == SCALES["tiny"].users
    assert _scalar(seeded, f"SELECT count(*) FROM {Table.POSTS}") == SCALES["tiny"].posts
    assert _scalar(seeded, f"SELECT count(*) FROM {Table.FEED}") > SCALES["tiny"].users * MIN_VIEWS


def test_feed_ids_exist_in_users_and_posts(seeded: Engine) -> None:
    orphans = f"""SELECT count(*) FROM {Table.FEED} f
        LEFT JOIN {Table.USERS} u USING (user_id) LEFT JOIN {Table.POSTS} p USING (post_id)
        WHERE u.user_id IS NULL OR p.post_id IS NULL"""
    assert _scalar(seeded, orphans) == 0


def test_every_like_follows_its_target_view(seeded: Engine) -> None:
    unmatched = f"""SELECT count(*) FROM {Table.FEED} l WHERE l.action = 'like' AND NOT EXISTS (
        SELECT 1 FROM {Table.FEED} v WHERE v.action = 'view' AND v.target = 1 AND v.user_id = l.user_id
        AND v.post_id = l.post_id AND v.timestamp < l.timestamp)"""
    assert _scalar(seeded, unmatched) == 0
    assert _scalar(seeded, f"SELECT count(*) FROM {Table.FEED} WHERE action = 'like' AND target <> 0") == 0
    likes = _scalar(seeded, f"SELECT count(*) FROM {Table.FEED} WHERE action = 'like'")
    assert likes > 0
    assert _scalar(seeded, f"SELECT count(*) FROM {Table.FEED} WHERE action = 'view' AND target = 1") == likes


def test_a_post_is_liked_at_most_once_per_user(seeded: Engine) -> None:
    twice = f"""SELECT count(*) FROM (SELECT user_id, post_id FROM {Table.FEED} WHERE action = 'like'
        GROUP BY 1, 2 HAVING count(*) > 1) t"""
    assert _scalar(seeded, twice) == 0


def test_views_are_in_the_period_and_daytime(seeded: Engine) -> None:
    outside = f"""SELECT count(*) FROM {Table.FEED} WHERE action = 'view' AND (timestamp < '2021-10-01 06:00'
        OR timestamp >= '2021-12-30' OR extract(hour FROM timestamp) < 6)"""
    assert _scalar(seeded, outside) == 0
    fewest = f"SELECT min(n) FROM (SELECT count(*) n FROM {Table.FEED} WHERE action = 'view' GROUP BY user_id) t"
    assert _scalar(seeded, fewest) >= MIN_VIEWS


def test_feed_indexes_are_back_after_the_load(seeded: Engine) -> None:
    indexes = _scalar(seeded, f"SELECT count(*) FROM pg_indexes WHERE tablename = '{Table.FEED}'")
    assert indexes == 3


def test_truth_loads_back_and_scores_every_pair(seeded: Engine) -> None:
    truth = load_truth(seeded)
    with seeded.connect() as conn:
        users = np.array(conn.execute(sa.text(f"SELECT user_id FROM {Table.USERS} ORDER BY 1")).scalars().all())
        posts = np.array(conn.execute(sa.text(f"SELECT post_id FROM {Table.POSTS} ORDER BY 1")).scalars().all())
    assert np.array_equal(truth.user_id, users)
    assert np.array_equal(truth.post_id, posts)
    from datetime import datetime

    scores = oracle_scores(truth, users[:10], posts, datetime(2021, 12, 20), datetime(2021, 12, 30))
    assert scores.shape == (10, len(posts))
    assert scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all(scores[:, ~truth.post_shown] == 0)


def test_same_seed_gives_the_same_feed_and_another_replaces_it(engine: Engine) -> None:
    seed_database(engine, "tiny", 7)
    first = _checksum(engine)
    seed_database(engine, "tiny", 7)
    assert _checksum(engine) == first
    assert _scalar(engine, f"SELECT count(*) FROM {Table.USERS}") == SCALES["tiny"].users
    seed_database(engine, "tiny", 8)
    assert _checksum(engine) != first
    assert _scalar(engine, f"SELECT count(*) FROM {Table.USERS}") == SCALES["tiny"].users


def test_cli_seed_loads_the_database(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTREC_DATABASE_URL", database_url)
    assert main(["seed", "--scale", "tiny", "--seed", "3"]) == 0
    assert _scalar(engine, f"SELECT count(*) FROM {Table.USERS}") == SCALES["tiny"].users
    assert load_truth(engine).params.world == "text"
    assert main(["seed", "--scale", "tiny", "--seed", "3", "--world", "bursty"]) == 0
    assert load_truth(engine).params.world == "bursty"
    first_year = f"SELECT min(extract(year FROM timestamp))::int FROM {Table.FEED}"
    assert _scalar(engine, first_year) == 2020  # the bursty world spans 15 months


@pytest.mark.parametrize("world", ["collab", "popular", "bursty", "fleeting"])
def test_each_world_loads_back_the_truth_it_was_generated_from(engine: Engine, world: str) -> None:
    seed_database(engine, "tiny", 7, world)
    loaded, generated = load_truth(engine), generate_world("tiny", 7, world).truth
    assert loaded.params == generated.params
    for field in fields(WorldTruth):
        if field.name != "params":
            assert np.array_equal(getattr(loaded, field.name), getattr(generated, field.name)), field.name


def test_a_failed_seed_leaves_the_previous_data_and_indexes(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_database(engine, "tiny", 7)
    before = _checksum(engine)

    def failing_feed(world):  # the first chunk loads, then generation breaks
        from batch.world.generator import generate_feed

        chunks = generate_feed(world)
        yield next(chunks)
        raise RuntimeError("generator broke mid-load")

    monkeypatch.setattr("batch.world.seed.generate_feed", failing_feed)
    with pytest.raises(RuntimeError, match="mid-load"):
        seed_database(engine, "tiny", 8)
    assert _checksum(engine) == before
    assert _scalar(engine, "SELECT count(*) FROM world_user_truth") == SCALES["tiny"].users
    assert _scalar(engine, f"SELECT count(*) FROM pg_indexes WHERE tablename = '{Table.FEED}'") == 3
