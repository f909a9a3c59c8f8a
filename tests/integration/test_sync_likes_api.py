"""End to end between the worker and the API: a like synced from PostgreSQL drops out of the next response."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import msgspec
import pytest
import redis
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from common.keys import KeyLayout
from common.payloads import Recommendations
from common.settings import Settings
from tests.api_fixtures import make_version, publish
from worker.likes import sync_likes

pytestmark = pytest.mark.anyio

USER = 205


async def served_ids(client: AsyncTestClient) -> list[int]:
    response = await client.get("/post/recommendations/", params={"id": USER, "limit": 5})
    assert response.status_code == 200, response.text
    return [post.id for post in msgspec.json.decode(response.content, type=Recommendations).recommendations]


async def test_synced_like_is_filtered_on_the_next_request(
    settings: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    version = make_version("v1", range(200, 210), list(range(1, 41)), list_length=20)
    publish(redis_client, keys, version)
    async with AsyncTestClient(app=create_app(replace(settings, k=50))) as client:
        before = await served_ids(client)
        assert before == list(version.lists[USER][:5])
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO feed_data VALUES (:ts, :user, :post, 'like', NULL)"),
                {"ts": datetime(2021, 12, 30, 10), "user": USER, "post": before[0]},
            )
        assert sync_likes(engine, redis_client, keys).added == 1
        after = await served_ids(client)
    assert before[0] not in after
    assert after == list(version.lists[USER][1:6])
