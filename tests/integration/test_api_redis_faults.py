"""Redis-side faults against a private redis-server: error replies (BUSY from a real long script, NOAUTH after a
password is set live), Redis restarted empty, and an API started while Redis is down. Each is a 503 naming the
condition, never a 500 or a 404, and the version watcher follows Redis again once the fault ends."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import anyio
import pytest
import redis
from litestar.testing import AsyncTestClient

from api.app import create_app
from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import OwnRedis, make_version, publish

pytestmark = pytest.mark.anyio

USERS = range(200, 210)
POSTS = list(range(1, 41))
HANG_GUARD_S = 10  # not a timing check: only stops a hanging request from hanging the test run
SECRET = "s3cret-rotated"  # noqa: S105  # a throw-away password of a private test server


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis("--lua-time-limit", "50")  # BUSY replies 50 ms into a long script (the default is 5 s)
    yield server
    if server.process is not None:
        server.stop()


def app_settings(base_settings: Settings, own_redis: OwnRedis, keys: KeyLayout) -> Settings:
    return replace(base_settings, redis_url=own_redis.url, prefix=keys.prefix, api_redis_timeout_ms=1000)


@pytest.fixture
async def client(base_settings: Settings, own_redis: OwnRedis, keys: KeyLayout) -> AsyncIterator[AsyncTestClient]:
    direct = own_redis.start()
    publish(direct, keys, make_version("v1", USERS, POSTS))
    publish(direct, keys, make_version("v2", USERS, POSTS[::-1]), make_current=False)
    direct.close()
    async with AsyncTestClient(app=create_app(app_settings(base_settings, own_redis, keys))) as test_client:
        yield test_client


async def answer(client: AsyncTestClient, path: str = "/post/recommendations/?id=203") -> tuple[int, dict[str, object]]:
    with anyio.fail_after(HANG_GUARD_S):
        response = await client.get(path)
    return response.status_code, response.json()


async def eventually(client: AsyncTestClient, path: str, check: object) -> dict[str, object]:
    """Poll ``path`` until ``check(status, body)`` holds; bounded, so a watcher that never recovers fails."""
    assert callable(check)
    for _ in range(200):
        status, body = await answer(client, path)
        if check(status, body):
            return body
        await anyio.sleep(0.05)
    raise AssertionError(f"{path} never got there: {status} {body}")


def serving(version: str) -> object:
    return lambda status, body: status == 200 and body["version"] == version


class LongScript:
    """A real long-running Lua script on its own connection, killed with SCRIPT KILL."""

    def __init__(self, server: OwnRedis) -> None:
        self.server = server
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with pytest.raises(redis.ResponseError):  # "Script killed by user with SCRIPT KILL"
            redis.Redis.from_url(self.server.url).eval("while true do end", 0)

    def __enter__(self) -> LongScript:
        self.thread.start()
        probe = redis.Redis.from_url(self.server.url)
        for _ in range(200):  # until Redis answers BUSY
            try:
                probe.ping()
            except redis.ResponseError as exc:
                assert "BUSY" in str(exc)
                return self
            threading.Event().wait(0.02)
        raise AssertionError("the long script never made Redis busy")

    def __exit__(self, *_: object) -> None:
        killer = redis.Redis.from_url(self.server.url)
        for _ in range(200):
            try:
                killer.script_kill()
                break
            except redis.ResponseError:  # NOTBUSY: the script has not started or already ended
                threading.Event().wait(0.02)
        self.thread.join(timeout=HANG_GUARD_S)


async def test_busy_redis_is_503_and_the_watcher_follows_redis_afterwards(
    client: AsyncTestClient, own_redis: OwnRedis, keys: KeyLayout
) -> None:
    await eventually(client, "/health", serving("v1"))
    with LongScript(own_redis):
        status, body = await answer(client)
        assert status == 503
        assert "BUSY" in str(body["message"])
        health = await eventually(client, "/health", lambda _s, b: b["watcher_error"] is not None)
        assert "BUSY" in str(health["watcher_error"])
        assert health["status"] == "unavailable"

    redis.Redis.from_url(own_redis.url).set(keys.current, "v2")  # a rollback the watcher must not miss
    await eventually(client, "/health", serving("v2"))
    assert (await answer(client))[0] == 200


async def test_a_password_set_live_is_503_naming_it_and_never_echoing_it(
    client: AsyncTestClient, own_redis: OwnRedis
) -> None:
    await eventually(client, "/health", serving("v1"))
    admin = redis.Redis.from_url(own_redis.url)
    admin.config_set("requirepass", SECRET)
    admin.client_kill_filter(_type="normal", skipme=True)  # the API's open connections: new ones need the password

    status, body = await answer(client)
    assert status == 503
    assert "NOAUTH" in str(body["message"]) and "POSTREC_REDIS_URL" in str(body["message"])
    health = await eventually(client, "/health", lambda _s, b: b["watcher_error"] is not None)
    assert SECRET not in str(health) and SECRET not in str(body)

    redis.Redis.from_url(own_redis.url, password=SECRET).config_set("requirepass", "")
    await eventually(client, "/health", serving("v1"))


async def test_redis_restarted_empty_is_503_saying_so_never_404(
    client: AsyncTestClient, own_redis: OwnRedis, keys: KeyLayout
) -> None:
    await eventually(client, "/health", serving("v1"))
    own_redis.stop()
    own_redis.start().close()  # empty: no version, no script

    for user in USERS:  # right after the restart (script: version gone) and after the watcher saw it
        status, body = await answer(client, f"/post/recommendations/?id={user}")
        assert status == 503, body
        assert "restarted empty" in str(body["message"])
        assert "run `postrec build`" not in str(body["message"])
    await eventually(client, "/health", lambda s, b: s == 503 and b["version"] is None)

    publish(redis.Redis.from_url(own_redis.url), keys, make_version("v1", USERS, POSTS))
    await eventually(client, "/health", serving("v1"))


async def test_api_started_with_redis_down_says_redis_is_unreachable_then_recovers(
    base_settings: Settings, own_redis: OwnRedis, keys: KeyLayout
) -> None:
    async with AsyncTestClient(app=create_app(app_settings(base_settings, own_redis, keys))) as client:
        status, body = await answer(client)
        assert status == 503
        assert "Redis is unreachable" in str(body["message"])
        assert "postrec build" not in str(body["message"])

        publish(own_redis.start(), keys, make_version("v1", USERS, POSTS))
        await eventually(client, "/health", serving("v1"))
        assert (await answer(client))[0] == 200
