"""The served log is best-effort: answers are logged in the capped stream, and a Redis that refuses writes
(``maxmemory`` full under ``noeviction``, a private redis-server) still answers reads, with the lost entries counted."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import anyio
import pytest
import redis
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.metrics import Metrics
from api.served_log import ServedLog
from api.wire import RedisAddress, RedisWire
from common.keys import KeyLayout
from common.redis_clients import api_client
from common.serving import ServedEntry
from common.settings import Settings
from tests.api_fixtures import OwnRedis, make_version, publish, wait_for_entries

pytestmark = pytest.mark.anyio

USERS = range(200, 210)


async def test_served_stream_stays_capped(base_settings: Settings, keys: KeyLayout, redis_client: redis.Redis) -> None:
    client = api_client(base_settings.redis_url, timeout_s=1.0)
    wire = RedisWire(RedisAddress.of_client(client), timeout_s=1.0)
    metrics = Metrics()
    served_log = ServedLog(wire, keys, served_maxlen=100, metrics=metrics)
    await wire.call("PING")  # the log only writes on an open connection: the hot path's script call opens it
    for user in range(1000):
        served_log.record(ServedEntry("", user, "control", "v", [b"3", b"2"]))
    await served_log.drain()
    await wire.close()
    await client.aclose()

    # MAXLEN ~ trims whole macro nodes (100 entries by default), so the length stays near the cap, not at it.
    assert 100 <= redis_client.xlen(keys.served) < 300
    assert metrics.served_log_failures == {}


@pytest.fixture
def full_redis() -> Iterator[OwnRedis]:
    server = OwnRedis("--maxmemory-policy", "noeviction")
    yield server
    if server.process is not None:
        server.stop()


@pytest.fixture
async def full_client(
    base_settings: Settings, full_redis: OwnRedis, keys: KeyLayout
) -> AsyncIterator[tuple[AsyncTestClient, redis.Redis]]:
    direct = full_redis.start()
    publish(direct, keys, make_version("v1", USERS, list(range(1, 41))))
    settings = replace(base_settings, redis_url=full_redis.url, prefix=keys.prefix, api_redis_timeout_ms=1000)
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client, direct
    direct.close()


async def test_a_full_redis_still_answers_reads_and_counts_the_lost_log_entries(
    full_client: tuple[AsyncTestClient, redis.Redis], keys: KeyLayout
) -> None:
    client, direct = full_client
    assert (await client.get("/post/recommendations/?id=201")).status_code == 200
    wait_for_entries(direct, keys, 1)
    direct.config_set("maxmemory", 1)  # below what is used: noeviction refuses every write from now on
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        direct.xadd(keys.served, {"probe": "1"})

    statuses = [(await client.get(f"/post/recommendations/?id={user}")).status_code for user in USERS]

    assert statuses == [200] * len(USERS)
    for _ in range(100):  # the last refusals are counted when their replies arrive, a moment after the answers
        if f'reason="OOM"}} {len(USERS)}' in (metrics := (await client.get("/metrics")).text):
            break
        await anyio.sleep(0.02)
    assert f'postrec_served_log_failures_total{{pid="{os.getpid()}",reason="OOM"}} {len(USERS)}' in metrics
    direct.config_set("maxmemory", 0)
    assert direct.xlen(keys.served) == 1
