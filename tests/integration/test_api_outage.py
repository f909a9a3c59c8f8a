"""Redis going away and coming back, with a redis-server this test owns: fast 503s, no hanging request, and normal
answers again once Redis is back, without restarting the app."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import anyio
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from common.keys import KeyLayout
from common.serving import RECOMMEND_LUA
from common.settings import Settings
from tests.api_fixtures import OwnRedis, make_version, publish

pytestmark = pytest.mark.anyio

USERS = range(200, 210)
HANG_GUARD_S = 10  # not a timing check: only stops a hanging request from hanging the test run


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    if server.process is not None:
        server.signal(signal.SIGCONT)
        server.stop()


@pytest.fixture
async def client(base_settings: Settings, own_redis: OwnRedis, keys: KeyLayout) -> AsyncIterator[AsyncTestClient]:
    publish(own_redis.start(), keys, make_version("v1", USERS, list(range(1, 41))))
    # A short timeout, yet one a busy shared test box does not trip on healthy requests.
    settings = replace(base_settings, redis_url=own_redis.url, prefix=keys.prefix, api_redis_timeout_ms=300)
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def get_status(client: AsyncTestClient, path: str = "/post/recommendations/?id=203") -> tuple[int, str]:
    with anyio.fail_after(HANG_GUARD_S):
        response = await client.get(path)
    return response.status_code, response.json().get("message", "")


async def eventually_ok(client: AsyncTestClient) -> None:
    """Poll until an answer is 200 (the watcher picks versions up within a poll); bounded, so a failure fails."""
    for _ in range(100):
        if (await get_status(client))[0] == 200:
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"no normal answer after Redis came back: {await get_status(client)}")


async def test_redis_stopped_is_503_then_back_to_normal(
    client: AsyncTestClient, own_redis: OwnRedis, keys: KeyLayout
) -> None:
    await eventually_ok(client)
    own_redis.stop()

    for _ in range(3):  # pooled connections are dead and new ones are refused: every request answers, with 503
        status, message = await get_status(client)
        assert status == 503
        assert "Redis is unreachable" in message
    health = await client.get("/health")
    assert health.status_code == 503
    assert (health.json()["redis"], health.json()["version"]) == (False, "v1")  # still holding the last version

    restarted = own_redis.start()  # an empty Redis: no data, no scripts
    publish(restarted, keys, make_version("v1", USERS, list(range(1, 41))))
    digest = hashlib.sha1(RECOMMEND_LUA.encode(), usedforsecurity=False).hexdigest()
    assert restarted.script_exists(digest) == [False]
    await eventually_ok(client)
    assert restarted.script_exists(digest) == [True]  # NOSCRIPT answered by loading the script again
    assert (await client.get("/health")).status_code == 200


async def test_hung_redis_is_503_after_the_timeout_then_back_to_normal(
    client: AsyncTestClient, own_redis: OwnRedis
) -> None:
    await eventually_ok(client)
    own_redis.signal(signal.SIGSTOP)  # accepts nothing and answers nothing, like a hung or partitioned Redis

    status, message = await get_status(client)
    assert status == 503
    assert "Redis is unreachable (no answer within 300 ms)" in message

    own_redis.signal(signal.SIGCONT)
    await eventually_ok(client)
