"""The one place Redis clients are made: every role gets timeouts that fit what it waits for.

A client without a socket timeout waits for the kernel's TCP timeout (many minutes) when a Redis host stops
answering; every client here has one. The roles:

- ``API``: the serving path (asyncio, made by :func:`api_client`): fails within the API's own budget.
- ``BATCH``: build, score, rollback, evaluate, the A/B report: bulk writes and long scans.
- ``JOB``: what a worker job opens for its own run, and the commands that enqueue or wait for jobs.
- ``RQ_WORKER``: the connection an RQ worker blocks on while it waits for work (``BLPOP`` with a long timeout), so
  its read timeout must stay above RQ's own wait.
- ``PROBE``: a quick yes/no (does Redis answer at all).

A URL of the scheme ``redis+cluster://`` (``rediss+cluster://`` with TLS) names the seed nodes of a Redis Cluster,
``redis+cluster://[[user]:password@]host:port[,host:port...]``, and selects redis-py's cluster client, which routes
each command to the master of its key's slot. Code that sends many commands per round trip, or scripts, to many
users' keys splits them per master first (:mod:`common.redis_nodes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, cast
from urllib.parse import unquote

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, RedisClusterException
from redis.typing import EncodableT

from common.errors import ConfigError, StoreUnavailableError

CLUSTER_SCHEMES: Final = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to connect, and to wait for each reply (None: wait as long as the command blocks)."""

    connect_s: float
    reply_s: float | None


class Role(Enum):
    """Who is asking, which decides how long a client waits."""

    BATCH = "batch"
    JOB = "job"
    RQ_WORKER = "rq-worker"
    PROBE = "probe"


# RQ workers block in BLPOP for up to rq's default dequeue timeout (405 s), then loop: the read timeout stays above.
RQ_DEQUEUE_TIMEOUT_S: Final = 405
TIMEOUTS: Final = {
    Role.BATCH: Timeouts(connect_s=5.0, reply_s=60.0),
    Role.JOB: Timeouts(connect_s=5.0, reply_s=60.0),
    Role.RQ_WORKER: Timeouts(connect_s=5.0, reply_s=RQ_DEQUEUE_TIMEOUT_S + 60.0),
    Role.PROBE: Timeouts(connect_s=1.0, reply_s=1.0),
}


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """What a ``redis+cluster://`` URL holds: the seed nodes, credentials and TLS."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False


def is_cluster_url(url: str) -> bool:
    """True for ``redis+cluster://`` and ``rediss+cluster://`` URLs."""
    return url.partition("://")[0] in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """Split a cluster URL into its seed nodes and credentials.

    Raises:
        ConfigError: The URL names no node, a node without a numeric port, or a database other than 0 (a cluster
            has only database 0).
    """
    scheme, _, rest = url.partition("://")
    userinfo, _, location = rest.rpartition("@")  # the last @: a password may hold one, or a '/'
    hosts, _, path = location.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ConfigError(f"a Redis Cluster has only database 0: drop '/{path}' from POSTREC_REDIS_URL")
    username, _, password = userinfo.partition(":")
    nodes = tuple(_node(item) for item in hosts.split(",") if item)
    if not nodes:
        raise ConfigError("POSTREC_REDIS_URL names no cluster node: use redis+cluster://host:port[,host:port...]")
    return ClusterUrl(nodes, unquote(username) or None, unquote(password) or None, CLUSTER_SCHEMES[scheme])


def _node(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"cluster node {text!r} of POSTREC_REDIS_URL is not host:port")
    return host.strip("[]"), int(port)


def redis_client(redis_url: str, role: Role) -> redis.Redis[bytes]:
    """A synchronous client (bytes replies, as RQ needs them) with the timeouts of ``role``.

    For a cluster URL it is a :class:`redis.cluster.RedisCluster`, typed as ``redis.Redis`` because it answers the
    same key commands; RQ cannot use it (``POSTREC_QUEUE_URL`` names a plain Redis for the queues).
    """
    timeouts = TIMEOUTS[role]
    if is_cluster_url(redis_url):
        return cast("redis.Redis[bytes]", _cluster_client(parse_cluster_url(redis_url), timeouts))
    client: redis.Redis[bytes] = redis.Redis.from_url(
        redis_url, socket_connect_timeout=timeouts.connect_s, socket_timeout=timeouts.reply_s
    )
    return client


# When no node answers, redis-py's cluster clients raise RedisClusterException (not a RedisError) or, while the
# cluster reports itself down, ClusterDownError: both mean what ConnectionError means from one Redis, and callers
# handle that one already.
CLUSTER_UNREACHABLE: Final = (RedisClusterException, ClusterDownError)


class _SyncCluster(redis.cluster.RedisCluster):  # type: ignore[type-arg]
    """redis-py's cluster client; a cluster that does not answer raises :class:`redis.ConnectionError`."""

    def execute_command(self, *args: EncodableT, **kwargs: object) -> object:
        try:
            return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
        except CLUSTER_UNREACHABLE as exc:
            raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc


class _AsyncCluster(aiocluster.RedisCluster):  # type: ignore[type-arg]
    """redis-py's asyncio cluster client; a cluster that does not answer raises :class:`redis.ConnectionError`."""

    async def execute_command(self, *args: EncodableT, **kwargs: object) -> object:
        try:
            return await super().execute_command(*args, **kwargs)
        except CLUSTER_UNREACHABLE as exc:
            raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc


def _cluster_client(url: ClusterUrl, timeouts: Timeouts) -> redis.cluster.RedisCluster[bytes]:
    """The cluster client, which reads the slot map from the seed nodes as it is made.

    Raises:
        StoreUnavailableError: No seed node answers (or one refuses the credentials).
    """
    try:
        return _SyncCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in url.nodes],
            username=url.username,
            password=url.password,
            ssl=url.tls,
            socket_connect_timeout=timeouts.connect_s,
            socket_timeout=timeouts.reply_s,
        )
    except (*CLUSTER_UNREACHABLE, redis.RedisError) as exc:  # the messages name nodes, never the password
        nodes = ",".join(f"{host}:{port}" for host, port in url.nodes)
        raise StoreUnavailableError(
            f"the Redis Cluster at {nodes} is unreachable ({exc}): check POSTREC_REDIS_URL"
        ) from None


def is_cluster(client: object) -> bool:
    """True when ``client`` is a Redis Cluster client (sync or asyncio)."""
    return isinstance(client, redis.cluster.RedisCluster | aiocluster.RedisCluster)


def api_client(redis_url: str, timeout_s: float) -> aioredis.Redis[bytes]:
    """The API's asyncio client: short timeouts, and one immediate retry on a broken connection.

    Loopback or same-rack Redis answers in well under a millisecond, so ``timeout_s`` (to connect, and for each
    reply; ``POSTREC_API_REDIS_TIMEOUT_MS``) only bounds how long a dead or hung Redis holds a request. The retry
    covers pooled connections left dead by a Redis restart, so service resumes on the first request after Redis is
    back; timeouts are not retried, so a hung Redis costs one timeout, not several.
    """
    if is_cluster_url(redis_url):
        url = parse_cluster_url(redis_url)
        cluster: aiocluster.RedisCluster[bytes] = _AsyncCluster(
            startup_nodes=[aiocluster.ClusterNode(host, port) for host, port in url.nodes],
            username=url.username,
            password=url.password,
            ssl=url.tls,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
        )
        return cast("aioredis.Redis[bytes]", cluster)
    return aioredis.Redis.from_url(
        redis_url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,)),
    )
