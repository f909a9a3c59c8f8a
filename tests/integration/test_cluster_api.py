"""The API on a real 3-master Redis Cluster: the response's shape, the like filter and the popular top-up for users
on every master, the served log, a rollback followed without a restart, and 503 (not 500) once the cluster stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import msgspec
import pytest
import redis
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.ranking import first_unliked
from batch.publish.release import make_live, rollback
from common.ab import assign_group
from common.keys import KeyLayout
from common.payloads import Recommendations
from common.redis_clients import Role, redis_client
from common.redis_nodes import node_groups
from common.settings import Settings
from tests.api_fixtures import Version, like, make_version, publish
from tests.cluster_fixtures import LocalCluster

pytestmark = pytest.mark.anyio

USERS = range(200, 260)
POSTS = list(range(1, 61))


@pytest.fixture
def version(cluster_client: redis.Redis, keys: KeyLayout) -> Version:
    published = make_version("v1", USERS, POSTS, list_length=20, salt="meta-salt", control_percent=30)
    publish(cluster_client, keys, published)
    return published


@pytest.fixture
async def client(
    base_settings: Settings, key_prefix: str, redis_cluster: LocalCluster, version: Version
) -> AsyncIterator[AsyncTestClient]:
    settings = replace(base_settings, redis_url=redis_cluster.url, prefix=key_prefix, k=50, api_redis_timeout_ms=1000)
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def recommend(client: AsyncTestClient, **params: object) -> Recommendations:
    response = await client.get("/post/recommendations/", params=params)
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=Recommendations)


async def test_users_on_every_master_get_their_unliked_posts_in_the_response_shape(
    client: AsyncTestClient, version: Version, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    assert len(node_groups(cluster_client, [keys.liked(user) for user in USERS])) == 3  # users on all 3 masters
    for user in USERS:
        like(cluster_client, keys, user, *version.lists[user][user % 3 : 10 : 2])

    for user in USERS:
        liked = {int(p) for p in cluster_client.smembers(keys.liked(user))}
        answer = await recommend(client, id=user, limit=8)
        assert [p.id for p in answer.recommendations] == first_unliked(version.lists[user], liked, 8, version.popular)
        assert answer.recommendations[0] == version.posts[answer.recommendations[0].id]
        assert answer.exp_group == assign_group(user, "meta-salt", 30)


async def test_a_short_list_is_topped_up_from_popular_in_its_other_slot(
    client: AsyncTestClient, version: Version, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    user = 220  # list: posts 41..60; popular: 60, 59, ..., 1
    like(cluster_client, keys, user, *range(41, 59), 39)

    answer = await recommend(client, id=user, limit=6)

    assert [p.id for p in answer.recommendations] == [59, 60, 40, 38, 37, 36]


async def test_answers_are_logged_in_the_served_stream_on_its_master(
    client: AsyncTestClient, version: Version, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    for user in USERS:
        await recommend(client, id=user)

    for _ in range(100):
        if cluster_client.xlen(keys.served) == len(USERS):
            break
        await asyncio.sleep(0.05)
    assert cluster_client.xlen(keys.served) == len(USERS)


async def test_the_api_follows_a_new_version_and_its_rollback(
    client: AsyncTestClient, version: Version, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    newer = make_version("v2", USERS, list(reversed(POSTS)), list_length=20)
    publish(cluster_client, keys, newer, make_current=False)
    assert make_live(cluster_client, keys, "v2") == "v1"
    await wait_for_list(client, 205, newer.lists[205][:5])

    assert rollback(cluster_client, keys) == ("v1", "v2")

    await wait_for_list(client, 205, version.lists[205][:5])


async def wait_for_list(client: AsyncTestClient, user: int, expected: list[int]) -> None:
    for _ in range(100):
        answer = await recommend(client, id=user)
        if [p.id for p in answer.recommendations] == list(expected):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"user {user} never got {expected}")


@pytest.fixture
def own_cluster(redis_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """A cluster of this test's own, to stop in the middle of it."""
    cluster = LocalCluster(redis_cluster.binary)
    cluster.start()
    yield cluster
    cluster.stop()


async def test_a_cluster_that_stops_answers_503_and_health_says_so(
    base_settings: Settings, own_cluster: LocalCluster, keys: KeyLayout
) -> None:
    publish(redis_client(own_cluster.url, Role.BATCH), keys, make_version("v1", USERS, POSTS))
    settings = replace(base_settings, redis_url=own_cluster.url, prefix=keys.prefix, k=50, api_redis_timeout_ms=1000)
    async with AsyncTestClient(app=create_app(settings)) as client:
        await recommend(client, id=201)
        for process in own_cluster.processes:
            process.terminate()
            process.wait()

        answers = [await client.get("/post/recommendations/", params={"id": user}) for user in USERS[:6]]
        health = await client.get("/health")
        await asyncio.sleep(0.6)  # the version watcher polls the dead cluster meanwhile

        assert {answer.status_code for answer in answers} == {503}
        assert "Redis is unreachable" in answers[0].text
        assert health.status_code == 503
        assert (await client.get("/health")).json()["redis"] is False


async def test_an_unknown_user_is_404_and_a_gone_version_503(
    client: AsyncTestClient, version: Version, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    unknown = await client.get("/post/recommendations/", params={"id": 99_999})
    cluster_client.delete(keys.popular("v1"), *(keys.recs("v1", user) for user in USERS))  # Redis lost the version
    gone = await client.get("/post/recommendations/", params={"id": 201})

    assert unknown.status_code == 404
    assert gone.status_code == 503
    assert "version v1 is gone from Redis" in gone.text
