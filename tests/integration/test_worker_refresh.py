"""The sharded refresh's steps in-process, against real PostgreSQL and Redis, on a tiny seeded world: sharded lists
equal unsharded scoring, a version goes live only whole, and rescore / refresh_user."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.pipeline.build import run_build
from batch.pipeline.extract import load_feed, load_posts
from batch.pipeline.features import USER_FEATURES, USER_TOPIC_FEATURES, Encoders, Feature, FeatureSet, viewed_flags
from batch.pipeline.feed_counts import Agg, count_feed
from batch.pipeline.options import BuildOptions, TrainParams
from batch.pipeline.prepared import Prepared
from batch.pipeline.score import score_all
from batch.publish.release import REQUIRED_FIELDS
from batch.world.seed import seed_database
from common.columns import Action, Col, Table
from common.errors import SourceUnavailableError, UnknownUserError, WorkerJobError
from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import make_version, publish
from worker import refresh as sharded
from worker import staging
from worker.staging import RefreshPlan

K = 40


@pytest.fixture
def refresh_settings(settings: Settings, engine: Engine) -> Settings:
    seed_database(engine, "tiny", 42)
    return replace(settings, shard_users=70, k=K)


def prepare(
    settings: Settings, engine: Engine, client: redis.Redis, train: bool = True
) -> tuple[RefreshPlan, Prepared]:
    return sharded.prepare_refresh(settings, engine, client, train=train)


def run_shards(client: redis.Redis, settings: Settings, plan: RefreshPlan, skip: frozenset[int] = frozenset()) -> None:
    for shard in range(plan.shards):
        if shard not in skip:
            sharded.score_shard(client, settings, plan.version, shard)


def stored_list(client: redis.Redis, keys: KeyLayout, version: str, user_id: int) -> list[int]:
    return [int(post) for post in client.lrange(keys.recs(version, user_id), 0, -1)]


def version_keys(client: redis.Redis, keys: KeyLayout, version: str) -> list[bytes]:
    return list(client.scan_iter(match=keys.version_prefix(version) + "*", count=1000))


def test_sharded_lists_equal_unsharded_scoring_and_go_live_whole(
    refresh_settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    plan, state = prepare(refresh_settings, engine, redis_client)
    assert plan.shards == 5 and plan.users == 300
    run_shards(redis_client, refresh_settings, plan)
    result = sharded.finalize_version(redis_client, refresh_settings, plan.version)
    assert redis_client.get(keys.current) == plan.version.encode()
    assert result["previous"] is None
    assert plan.models == ["control", "test"]  # the settings' 50/50 split serves both models
    # the batch's own scoring, every user by the model of its A/B group, in one process
    expected = dict(score_all(state, refresh_settings, K, threads=-1).lists())
    assert {user: stored_list(redis_client, keys, plan.version, user) for user in expected} == expected
    meta = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.meta(plan.version)).items()}
    assert set(REQUIRED_FIELDS) <= set(meta)
    assert int(meta["users"]) == sum(1 for posts in expected.values() if posts) == result["users"]


def test_missing_shard_abandons_the_version_and_keeps_the_live_one(
    refresh_settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    publish(redis_client, keys, make_version("old", range(200, 210), list(range(1, 30))))
    plan, _ = prepare(refresh_settings, engine, redis_client)
    run_shards(redis_client, refresh_settings, plan, skip=frozenset({3}))
    with pytest.raises(WorkerJobError, match=r"shards \[3\] did not land"):
        sharded.finalize_version(redis_client, refresh_settings, plan.version)
    assert redis_client.get(keys.current) == b"old"
    assert version_keys(redis_client, keys, plan.version) == []
    with pytest.raises(WorkerJobError, match="missing"):  # a late shard finds its inputs gone and fails fast
        sharded.score_shard(redis_client, refresh_settings, plan.version, 3)


def test_retried_shard_replaces_its_lists_instead_of_appending(
    refresh_settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    plan, _ = prepare(refresh_settings, engine, redis_client)
    first = sharded.score_shard(redis_client, refresh_settings, plan.version, 0)
    again = sharded.score_shard(redis_client, refresh_settings, plan.version, 0)
    assert first == again
    user = plan.shard_first_users[0]
    assert len(stored_list(redis_client, keys, plan.version, user)) <= K


def test_rescore_keeps_the_model_and_refresh_user_drops_what_the_user_likes_now(
    refresh_settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    plan, _ = prepare(refresh_settings, engine, redis_client)
    run_shards(redis_client, refresh_settings, plan)
    sharded.finalize_version(redis_client, refresh_settings, plan.version)

    again, _ = prepare(refresh_settings, engine, redis_client, train=False)
    run_shards(redis_client, refresh_settings, again)
    result = sharded.finalize_version(redis_client, refresh_settings, again.version)
    assert result["previous"] == plan.version
    assert again.meta["models"] == plan.meta["models"]
    user = 250
    before = stored_list(redis_client, keys, again.version, user)
    assert before == stored_list(redis_client, keys, plan.version, user)  # same model, same data: same list

    redis_client.sadd(keys.liked(user), *before[:3])
    answer = sharded.refresh_user(redis_client, refresh_settings, user, engine)
    after = stored_list(redis_client, keys, again.version, user)
    assert answer == {"user_id": user, "version": again.version, "posts": len(after)}
    # The likes of now also move the user's collaborative scores, so the rest of the list may reorder.
    assert len(after) == len(before) and not set(before[:3]) & set(after)


def live_version_of(client: redis.Redis, settings: Settings, engine: Engine) -> RefreshPlan:
    plan, _ = prepare(settings, engine, client)
    run_shards(client, settings, plan)
    sharded.finalize_version(client, settings, plan.version)
    return plan


def stored_user(client: redis.Redis, keys: KeyLayout, plan: RefreshPlan, user_id: int) -> tuple[FeatureSet, int]:
    features = staging.load_shard_features(client, keys, plan.version, sharded.shard_of(plan, user_id))
    return features, int(features.user_positions([user_id])[0])


def csr_row(indptr: np.ndarray, indices: np.ndarray, position: int) -> list[int]:
    return indices[indptr[position] : indptr[position + 1]].tolist()


def add_feed_rows(engine: Engine, rows: list[tuple[datetime, int, int, str, int]]) -> None:
    insert = sa.text(f"INSERT INTO {Table.FEED} VALUES (:t, :u, :p, :a, :target)")
    with engine.begin() as conn:
        conn.execute(insert, [{"t": t, "u": u, "p": p, "a": a, "target": target} for t, u, p, a, target in rows])


def unseen_posts_of_topic(engine: Engine, user_id: int, topic: str, n: int) -> list[int]:
    sql = sa.text(
        f"SELECT {Col.POST_ID} FROM {Table.POSTS} WHERE {Col.TOPIC} = :topic AND {Col.POST_ID} NOT IN"
        f" (SELECT {Col.POST_ID} FROM {Table.FEED} WHERE {Col.USER_ID} = :user) ORDER BY {Col.POST_ID} LIMIT :n"
    )
    with engine.connect() as conn:
        return [int(row[0]) for row in conn.execute(sql, {"topic": topic, "user": user_id, "n": n})]


def test_refresh_user_recomputes_the_user_features_from_its_rows_of_now(
    refresh_settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    plan = live_version_of(redis_client, refresh_settings, engine)
    user = 250
    stored, position = stored_user(redis_client, keys, plan, user)
    encoders = Encoders.from_json(staging.load_encoders_json(redis_client, keys, plan.version))

    # Nothing new in PostgreSQL: the single-user path computes exactly the batch's numbers.
    same = sharded.live_user_features(redis_client, keys, plan, user, engine)
    assert np.array_equal(same.users[0], stored.users[position])
    assert np.array_equal(same.user_topics[0], stored.user_topics[position])
    assert csr_row(same.viewed_indptr, same.viewed_posts, 0) == csr_row(
        stored.viewed_indptr, stored.viewed_posts, position
    )
    assert csr_row(same.liked_indptr, same.liked_posts, 0) == csr_row(stored.liked_indptr, stored.liked_posts, position)

    # After the version was built: the user is shown the top 3 of its list, and views and likes 5 tech posts.
    before = stored_list(redis_client, keys, plan.version, user)
    shown_now, liked_now = before[:3], unseen_posts_of_topic(engine, user, "tech", 5)
    assert len(liked_now) == 5
    later = datetime.fromisoformat(plan.meta["as_of"]) + timedelta(hours=9)
    rows = [(later, user, post, Action.VIEW, 0) for post in shown_now]
    rows += [(later, user, post, Action.VIEW, 1) for post in liked_now]
    rows += [(later + timedelta(minutes=2), user, post, Action.LIKE, 0) for post in liked_now]
    add_feed_rows(engine, rows)

    one = sharded.live_user_features(redis_client, keys, plan, user, engine)

    # (a) The posts shown now are viewed_before; they were not in the version's features.
    shown_positions = one.post_positions(shown_now)
    zeros = np.zeros(len(shown_now), dtype=np.int64)
    assert viewed_flags(one, zeros, shown_positions).tolist() == [1.0] * 3
    assert viewed_flags(stored, zeros + position, shown_positions).tolist() == [0.0] * 3
    liked_positions = set(one.post_positions(liked_now).tolist())
    assert liked_positions <= set(csr_row(one.liked_indptr, one.liked_posts, 0))

    # (b) The user's counts are count_feed's on all of the user's rows of now.
    feed = load_feed(engine).filter(pl.col(Col.USER_ID) == user)
    counts = count_feed(feed, load_posts(engine), feed[Col.TIMESTAMP].max() + timedelta(seconds=1))
    views, likes = counts.users.row(0, named=True)[Agg.VIEWS], counts.users.row(0, named=True)[Agg.LIKES]
    column = USER_FEATURES.index
    assert (one.users[0, column(Feature.USER_VIEWS)], one.users[0, column(Feature.USER_LIKES)]) == (views, likes)
    stored_views = stored.users[position, column(Feature.USER_VIEWS)]
    stored_likes = stored.users[position, column(Feature.USER_LIKES)]
    assert (views, likes) == (stored_views + 8, stored_likes + 5)
    topic_codes = dict(zip(encoders.values[Col.TOPIC], range(len(encoders.values[Col.TOPIC])), strict=False))
    expected_topics = np.zeros((encoders.topic_slots(), 2), dtype=np.float32)
    for row in counts.user_topics.iter_rows(named=True):
        expected_topics[topic_codes[row[Col.TOPIC]]] = (row[Agg.VIEWS], row[Agg.LIKES])
    topic_columns = [USER_TOPIC_FEATURES.index(Feature.TOPIC_VIEWS), USER_TOPIC_FEATURES.index(Feature.TOPIC_LIKES)]
    assert np.array_equal(one.user_topics[0][:, topic_columns], expected_topics)
    share = USER_TOPIC_FEATURES.index(Feature.TOPIC_VIEW_SHARE)
    assert np.allclose(one.user_topics[0][:, share], expected_topics[:, 0] / views)

    # And refresh_user scores these features: the posts shown now leave the top of the user's list (with the
    # version's stale views they stay there), and the posts liked now leave it altogether.
    sharded.refresh_user(redis_client, refresh_settings, user, engine)
    after = stored_list(redis_client, keys, plan.version, user)
    assert len(after) == K
    assert not set(shown_now) & set(after[:3])
    assert not set(liked_now) & set(after)


def test_refresh_user_refuses_an_unknown_user_and_an_unreachable_postgresql_and_keeps_the_list(
    refresh_settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    plan = live_version_of(redis_client, refresh_settings, engine)
    with pytest.raises(UnknownUserError, match="not in the live version"):
        sharded.refresh_user(redis_client, refresh_settings, 99_999, engine)
    user = 250
    before = stored_list(redis_client, keys, plan.version, user)
    nowhere = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(SourceUnavailableError, match="unreachable"):
        sharded.refresh_user(redis_client, refresh_settings, user, nowhere)
    nowhere.dispose()
    assert stored_list(redis_client, keys, plan.version, user) == before


def test_refresh_user_works_on_a_version_made_by_build(
    refresh_settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    fast = TrainParams(iterations=20, depth=4, max_eval_users=100, threads=1)
    built = run_build(refresh_settings, engine, BuildOptions(k=K, params=fast))
    assert redis_client.get(keys.current) == built.version.encode()
    assert not staging.has_plan(redis_client, keys, built.version)  # build publishes lists only
    user = 250
    before = stored_list(redis_client, keys, built.version, user)

    redis_client.sadd(keys.liked(user), *before[:3])
    answer = sharded.refresh_user(redis_client, refresh_settings, user, engine)
    after = stored_list(redis_client, keys, built.version, user)
    assert answer == {"user_id": user, "version": built.version, "posts": len(after)}
    # The build's model on features recomputed at the version's as_of (the sequence score is fitted again), less
    # what is liked now; those likes also move the collaborative scores, so only the length and the filter hold.
    assert len(after) == len(before) and not set(before[:3]) & set(after)

    # the inputs were staged once, for as long as the version lives; a second user reads them
    assert staging.has_plan(redis_client, keys, built.version)
    assert redis_client.ttl(keys.refresh_input(built.version, staging.PLAN)) == -1
    other = sharded.refresh_user(redis_client, refresh_settings, 251, engine)
    assert other["version"] == built.version and other["posts"] > 0
