"""The server-side serving script agrees with the pure rule in api.ranking, on generated lists and liked sets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.ranking import first_unliked
from api.store import Store
from api.wire import RedisAddress, RedisWire
from common.errors import NoPublishedVersionError
from common.keys import KeyLayout
from common.redis_clients import api_client
from common.settings import Settings

post_ids = st.integers(min_value=1, max_value=60)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def store(base_settings: Settings, keys: KeyLayout, loop: asyncio.AbstractEventLoop) -> Iterator[Store]:
    client = api_client(base_settings.redis_url, timeout_s=1.0)
    wire = RedisWire(RedisAddress.of_client(client), timeout_s=1.0)
    yield Store(client, wire, keys)
    loop.run_until_complete(wire.close())
    loop.run_until_complete(client.aclose())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ranked=st.lists(post_ids, min_size=1, max_size=40),
    liked=st.sets(post_ids, max_size=40),
    popular=st.lists(post_ids, max_size=40),
    limit=st.integers(min_value=1, max_value=45),
)
def test_script_returns_what_the_pure_rule_returns(
    store: Store,
    keys: KeyLayout,
    redis_client: redis.Redis,
    loop: asyncio.AbstractEventLoop,
    ranked: list[int],
    liked: set[int],
    popular: list[int],
    limit: int,
) -> None:
    user, version = 7, "v"
    redis_client.delete(keys.recs(version, user), keys.liked(user), keys.popular(version))
    redis_client.rpush(keys.recs(version, user), *ranked)
    if liked:
        redis_client.sadd(keys.liked(user), *liked)
    if popular:
        redis_client.rpush(keys.popular(version), *popular)

    served = loop.run_until_complete(store.recommend(version, user, limit))

    assert served is not None
    assert [int(p) for p in served] == first_unliked(ranked, liked, limit, popular)


def test_script_answers_none_for_a_user_without_a_list(
    store: Store, keys: KeyLayout, redis_client: redis.Redis, loop: asyncio.AbstractEventLoop
) -> None:
    redis_client.rpush(keys.popular("v"), 1, 2)
    assert loop.run_until_complete(store.recommend("v", 12345, 5)) is None


def test_a_version_gone_from_redis_is_no_unknown_user(store: Store, loop: asyncio.AbstractEventLoop) -> None:
    # Redis restarted empty under a running API: 503 until the watcher sees it, not 404 for every user.
    with pytest.raises(NoPublishedVersionError, match="version v is gone from Redis"):
        loop.run_until_complete(store.recommend("v", 12345, 5))
