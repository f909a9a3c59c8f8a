"""An app shuts down promptly after serving, even when the watcher's cancellation lands inside a redis-py call:
redis-py can swallow it, the watcher's loop then polled on, and the lifespan shutdown waited for it for good.

The app runs under Litestar's test client in a fresh process (plain ``asyncio.run``), where the hang reproduced
every time; under pytest's own event loop it rarely did (it hung test_api.py's fixture teardown once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from common.keys import KeyLayout
from tests.api_fixtures import make_version, publish

HANG_GUARD_S = 60  # not a timing check: a shutdown that hangs fails here instead of hanging the run
SCRIPT = """
import asyncio, os
from dataclasses import replace
from litestar.testing import AsyncTestClient
from api.app import create_app
from common.settings import load_settings

async def main():
    settings = replace(load_settings(), prefix=os.environ["PROBE_PREFIX"], k=50)
    async with AsyncTestClient(app=create_app(settings)) as client:
        for query in ("id=200", "id=1e3", "id=200&id=201", "id=abc", "id=200&time=2021-12-30", "id=-5"):
            await client.get(f"/post/recommendations/?{query}")
        await client.head("/post/recommendations/?id=200")
        await client.get("/metrics")
        await client.get("/schema/openapi.json")
    print("shut down")

asyncio.run(main())
"""


def test_shutdown_returns_after_requests(keys: KeyLayout, redis_client: redis.Redis) -> None:
    publish(redis_client, keys, make_version("v1", range(200, 240), list(range(1, 61))))
    env = {**os.environ, "PROBE_PREFIX": keys.prefix, "PYTHONPATH": str(Path(__file__).parents[2])}
    try:
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", SCRIPT], env=env, capture_output=True, text=True,
            timeout=HANG_GUARD_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AssertionError("the app's shutdown hung") from None
    assert done.returncode == 0, done.stderr[-3000:]
    assert "shut down" in done.stdout
