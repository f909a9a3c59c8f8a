"""Splitting work on many keys by the Redis node that holds them, so bulk writes and scripts run on a cluster too.

On one Redis every key lives on the one server, and a pipeline may carry any command. On Redis Cluster a key lives
on the master of its hash slot; redis-py's cluster pipeline routes plain commands but refuses scripts (EVALSHA),
and a raw connection (the lists' bulk writer) reaches one node only. So callers group their keys per master
with :func:`node_groups` and run the same code on each master's plain client: one group holding the client itself
when it is not a cluster client, so single-Redis deployments keep one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis
import redis.cluster
from redis.crc import key_slot

from common.redis_clients import is_cluster


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """The keys one Redis server holds.

    Attributes:
        client: A plain client to that server (the caller's own client when it is not a cluster).
        positions: Positions, in the caller's sequence, of the keys on that server, in order.
    """

    client: redis.Redis[bytes]
    positions: list[int]


def node_groups(client: redis.Redis[bytes], keys: Sequence[str]) -> list[NodeGroup]:
    """Group ``keys`` by the server that holds them (one group for a plain client), by the cluster's slot map."""
    if not is_cluster(client):
        return [NodeGroup(client, list(range(len(keys))))]
    cluster = cast("redis.cluster.RedisCluster[bytes]", client)
    by_node: dict[str, list[int]] = {}
    node_of_slot: dict[int, str] = {}
    for position, key in enumerate(keys):
        slot = key_slot(key.encode())
        name = node_of_slot.get(slot)
        if name is None:
            # types-redis declares the slot a str; redis-py takes the slot number.
            node = cluster.nodes_manager.get_node_from_slot(slot)  # type: ignore[arg-type]
            name = node_of_slot[slot] = node.name
        by_node.setdefault(name, []).append(position)
    return [NodeGroup(_node_client(cluster, name), positions) for name, positions in sorted(by_node.items())]


def _node_client(cluster: redis.cluster.RedisCluster[bytes], name: str) -> redis.Redis[bytes]:
    node = cluster.get_node(node_name=name)
    if node is None:  # the slot map changed between the two look-ups
        raise redis.ConnectionError(f"Redis Cluster node {name} left the cluster: retry")
    return cluster.get_redis_connection(node)
