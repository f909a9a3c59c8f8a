"""The hot path's connection on a real Redis Cluster: routing by slot over one pipelined connection per master, a
script loaded on every master, a slot that moved to another master meanwhile, and one in the middle of moving."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.crc import key_slot

from api.cluster_wire import ClusterWire, encoded_key, routing_key
from api.wire import RedisAddress, encode_command
from common.keys import KeyLayout
from tests.cluster_fixtures import LocalCluster

pytestmark = pytest.mark.anyio


@pytest.fixture
def wire(redis_cluster: LocalCluster) -> ClusterWire:
    return ClusterWire([RedisAddress(port=port) for port in redis_cluster.ports], timeout_s=2.0)


def test_the_key_of_evalsha_is_its_first_script_key():
    assert routing_key((b"EVALSHA", "f" * 40, 2, "a:{1}", "b:{1}", 5)) == b"a:{1}"
    assert routing_key(("LRANGE", "list", 0, -1)) == b"list"
    assert routing_key(("EVALSHA", "f" * 40, 0)) is None
    assert encoded_key(encode_command(("XADD", "p:served", "MAXLEN", "~", 10, "*", "a", "b"))) == b"p:served"


async def test_concurrent_commands_reach_the_master_of_their_key(
    wire: ClusterWire, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    names = [keys.liked(user) for user in range(300)]
    for name, user in zip(names, range(300), strict=True):
        cluster_client.sadd(name, user * 7)

    replies = await asyncio.gather(*(wire.call("SMEMBERS", name) for name in names))

    assert replies == [[str(user * 7).encode()] for user in range(300)]
    assert len(wire._wires) == 3  # one connection per master
    await wire.close()


async def test_a_script_loaded_once_runs_on_every_master(
    wire: ClusterWire, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    sha = (await wire.call("SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])")).decode()
    names = [f"{keys.prefix}:s:{{{user}}}" for user in range(30)]
    cluster_client.mset_nonatomic({name: name for name in names})

    replies = [await wire.call("EVALSHA", sha, 1, name) for name in names]

    assert replies == [name.encode() for name in names]
    await wire.close()


async def test_a_moved_slot_is_followed_to_its_new_master(
    wire: ClusterWire, redis_cluster: LocalCluster, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    name = keys.liked(4242)
    cluster_client.sadd(name, 1)
    assert await wire.call("SCARD", name) == 1  # the slot map is known now
    redis_cluster.move_slot(name.encode(), to=(redis_cluster.owner_of(name.encode()) + 1) % 3)
    cluster_client.sadd(name, 2)  # redis-py's client follows the move too

    assert await wire.call("SCARD", name) == 2
    await wire.close()


async def test_a_key_that_left_a_slot_in_migration_is_asked_for_on_the_importing_master(
    wire: ClusterWire, redis_cluster: LocalCluster, cluster_client: redis.Redis, keys: KeyLayout
) -> None:
    name = keys.liked(777)
    cluster_client.sadd(name, 5)
    assert await wire.call("SCARD", name) == 1
    target = (redis_cluster.owner_of(name.encode()) + 1) % 3
    redis_cluster.move_slot(name.encode(), to=target, finish=False)
    try:
        assert await wire.call("SMEMBERS", name) == [b"5"]  # the old owner answers ASK: the key is on the target
    finally:
        redis_cluster.assign_slot(key_slot(name.encode()), target)
    await wire.close()


async def test_ping_reaches_every_master(wire: ClusterWire, redis_cluster: LocalCluster) -> None:
    assert await wire.call("PING") == b"PONG"
    assert len(wire._wires) == 3  # the served log's drain waits on every connection
    await wire.close()
