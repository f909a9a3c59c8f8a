"""The sharded refresh's steps in-process, against real PostgreSQL and Redis, on a tiny seeded world: sharded lists
equal unsharded scoring, a version goes live only whole, and rescore / refresh_user."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis
from sqlalchemy.engine import Engine

from batch.build import BuildState, step_score
from batch.publish import REQUIRED_FIELDS
from batch.seed import seed_database
from common.errors import WorkerJobError
from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import make_version, publish
from worker import refresh as sharded
from worker.staging import RefreshPlan

K = 40


@pytest.fixture
def refresh_settings(settings: Settings, engine: Engine) -> Settings:
    seed_database(engine, "tiny", 42)
    return replace(settings, shard_users=70, k=K)


def prepare(
    settings: Settings, engine: Engine, client: redis.Redis, train: bool = True
) -> tuple[RefreshPlan, BuildState]:
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
    step_score(state)  # the batch's own scoring, every user by the model of its A/B group, in one process
    assert state.rankings is not None
    expected = dict(state.rankings.lists())
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
    answer = sharded.refresh_user(redis_client, refresh_settings, user)
    after = stored_list(redis_client, keys, again.version, user)
    assert answer == {"user_id": user, "version": again.version, "posts": len(after)}
    assert after[: K - 3] == before[3:]
    assert not set(before[:3]) & set(after)
