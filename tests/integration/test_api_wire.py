"""The pipelined hot-path connection against real Redis servers: ordering under concurrency, auth and database,
error replies, timeouts and reconnection."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import NoScriptError, ResponseError

from api.wire import RedisAddress, RedisWire
from common.errors import StoreUnavailableError
from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import OwnRedis, free_port

pytestmark = pytest.mark.anyio

SECRET = "s3cret"  # noqa: S105 - the throwaway redis-server's requirepass


@pytest.fixture
def wire(base_settings: Settings) -> RedisWire:
    return RedisWire(RedisAddress.of_client(redis.asyncio.Redis.from_url(base_settings.redis_url)), timeout_s=2.0)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis("--requirepass", SECRET)
    server.start(password=SECRET)
    yield server
    if server.process is not None:
        server.signal(signal.SIGCONT)
        server.stop()


async def test_concurrent_commands_get_their_own_replies(
    wire: RedisWire, keys: KeyLayout, redis_client: redis.Redis
) -> None:
    redis_client.mset({f"{keys.prefix}:n:{i}": i * 7 for i in range(500)})
    replies = await asyncio.gather(*(wire.call("GET", f"{keys.prefix}:n:{i}") for i in range(500)))
    assert replies == [str(i * 7).encode() for i in range(500)]
    await wire.close()


async def test_error_replies_raise_and_leave_the_connection_usable(
    wire: RedisWire, keys: KeyLayout, redis_client: redis.Redis
) -> None:
    redis_client.set(f"{keys.prefix}:s", "text")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await wire.call("LRANGE", f"{keys.prefix}:s", 0, -1)
    with pytest.raises(NoScriptError):
        await wire.call("EVALSHA", "0" * 40, 0)
    assert await wire.call("GET", f"{keys.prefix}:s") == b"text"
    await wire.close()


async def test_authenticates_and_selects_the_database(own_redis: OwnRedis) -> None:
    admin = redis.Redis(port=own_redis.port, password=SECRET, db=5)
    admin.set("where", "db5")
    client = redis.asyncio.Redis.from_url(f"redis://:{SECRET}@127.0.0.1:{own_redis.port}/5")
    wire = RedisWire(RedisAddress.of_client(client), timeout_s=2.0)
    assert await wire.call("GET", "where") == b"db5"
    await wire.close()


async def test_wrong_password_is_unavailable_with_a_hint(own_redis: OwnRedis) -> None:
    client = redis.asyncio.Redis.from_url(f"redis://:nope@127.0.0.1:{own_redis.port}/0")
    wire = RedisWire(RedisAddress.of_client(client), timeout_s=2.0)
    with pytest.raises(StoreUnavailableError, match="POSTREC_REDIS_URL"):
        await wire.call("PING")


async def test_nothing_listening_is_unavailable() -> None:
    wire = RedisWire(RedisAddress(port=free_port()), timeout_s=0.5)
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        await wire.call("PING")


async def test_timeout_fails_everything_in_flight_then_reconnects(own_redis: OwnRedis) -> None:
    wire = RedisWire(RedisAddress(port=own_redis.port, password=SECRET), timeout_s=0.2)
    assert await wire.call("PING") == b"PONG"
    own_redis.signal(signal.SIGSTOP)
    results = await asyncio.gather(*(wire.call("PING") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailableError) and "no answer within 200 ms" in str(r) for r in results)
    own_redis.signal(signal.SIGCONT)
    assert await wire.call("PING") == b"PONG"
    await wire.close()


async def test_restarted_redis_is_reconnected_to(own_redis: OwnRedis) -> None:
    wire = RedisWire(RedisAddress(port=own_redis.port, password=SECRET), timeout_s=1.0)
    assert await wire.call("PING") == b"PONG"
    own_redis.stop()
    with pytest.raises(StoreUnavailableError):
        await wire.call("PING")
    own_redis.start(password=SECRET)
    assert await wire.call("PING") == b"PONG"
    await wire.close()
