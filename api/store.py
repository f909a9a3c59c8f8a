"""The API's Redis access: the hot path's one-round-trip script, and the reads that load a version.

The script runs over the pipelined connection of :mod:`api.wire`; everything else goes through redis-py. Both
turn an unreachable Redis into :class:`~common.errors.StoreUnavailableError`, which the API answers with 503, and
both wait at most the configured timeout (``POSTREC_API_REDIS_TIMEOUT_MS``) for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Final

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.wire import RedisWire, unreachable
from common.errors import StoreUnavailableError
from common.keys import KeyLayout

CATALOG_PAGE: Final = 500

# The serving rule of api.ranking.first_unliked, run inside Redis so a request costs one round trip.
# KEYS: 1 the user's list, 2 the user's liked set (both carry the user's hash tag), 3 the version's popular list,
#       4 the served stream.
# ARGV: 1 limit, 2 the stream's approximate cap, 3 request time, 4 user id, 5 group, 6 version.
# Returns the chosen post ids, or nil when the user has no list in this version.
# On Redis Cluster, KEYS 3 and 4 live in other slots than the user's keys: the popular list would have to be
# copied under each slot's hash tag and the served log split into per-slot streams (served:{<slot tag>}).
RECOMMEND_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local limit = tonumber(ARGV[1])
local page = math.max(limit * 2, 16)
local chosen, seen = {}, {}
local function take(key)
  local start = 0
  while #chosen < limit do
    local ids = redis.call('LRANGE', key, start, start + page - 1)
    if #ids == 0 then return end
    local liked = redis.call('SMISMEMBER', KEYS[2], unpack(ids))
    for i, id in ipairs(ids) do
      if liked[i] == 0 and not seen[id] then
        seen[id] = true
        chosen[#chosen + 1] = id
        if #chosen == limit then return end
      end
    end
    start = start + page
  end
end
take(KEYS[1])
if #chosen < limit then take(KEYS[3]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'time', ARGV[3], 'user', ARGV[4], 'group', ARGV[5],
  'version', ARGV[6], 'posts', table.concat(chosen, ','))
return chosen
"""


def make_client(redis_url: str, timeout_s: float) -> aioredis.Redis[bytes]:
    """An asyncio Redis client that fails fast: short timeouts, and one immediate retry on a broken connection.

    Loopback or same-rack Redis answers in well under a millisecond, so ``timeout_s`` (to connect, and for each
    reply) only bounds how long a dead or hung Redis holds a request. The retry covers pooled connections left dead
    by a Redis restart, so service resumes on the first request after Redis is back; timeouts are not retried, so a
    hung Redis costs one timeout, not several.
    """
    return aioredis.Redis.from_url(
        redis_url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )


def _unavailable(exc: RedisError) -> StoreUnavailableError:
    return unreachable(type(exc).__name__)


class Store:
    """Redis reads and the serving script, under one key layout."""

    def __init__(self, client: aioredis.Redis[bytes], wire: RedisWire, keys: KeyLayout, served_maxlen: int) -> None:
        """Wrap the two connections to one Redis.

        Args:
            client: A redis-py asyncio client (see :func:`make_client`), for everything but the hot path.
            wire: The hot path's pipelined connection.
            keys: The key layout of the deployment's prefix.
            served_maxlen: Approximate cap of the served stream.
        """
        self.client = client
        self._wire = wire
        self.keys = keys
        self._served_maxlen = served_maxlen
        self._script = RECOMMEND_LUA.encode()
        self._sha = hashlib.sha1(self._script, usedforsecurity=False).hexdigest()

    async def recommend(self, version: str, user_id: int, limit: int, group: str, time: str) -> list[bytes] | None:
        """Run the serving script: the filtered post ids (as Redis returns them), or None for an unknown user.

        Raises:
            StoreUnavailableError: Redis cannot be reached or did not answer in time.
        """
        keys = self.keys
        args = (
            keys.recs(version, user_id),
            keys.liked(user_id),
            keys.popular(version),
            keys.served,
            limit,
            self._served_maxlen,
            time,
            user_id,
            group,
            version,
        )
        try:
            reply = await self._wire.call(b"EVALSHA", self._sha, 4, *args)
        except NoScriptError:  # a restarted or flushed Redis forgot the script: load it once and go on
            await self._wire.call(b"SCRIPT", b"LOAD", self._script)
            reply = await self._wire.call(b"EVALSHA", self._sha, 4, *args)
        return reply  # type: ignore[no-any-return]

    async def current_version(self) -> str | None:
        """Id of the live version, or None when nothing is published."""
        try:
            raw = await self.client.get(self.keys.current)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise _unavailable(exc) from None
        return None if raw is None else raw.decode()

    async def version_meta(self, version: str) -> dict[bytes, bytes]:
        """The raw meta hash of a version (empty when the version is gone)."""
        try:
            return await self.client.hgetall(self.keys.meta(version))
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise _unavailable(exc) from None

    async def catalog_pages(self, version: str) -> AsyncIterator[dict[bytes, bytes]]:
        """The version's post catalog in pages of about :data:`CATALOG_PAGE` posts.

        Paging keeps each reply small (a full catalog is megabytes), so neither Redis nor this process stalls
        the requests being served meanwhile.
        """
        cursor = 0
        while True:
            try:
                cursor, page = await self.client.hscan(self.keys.posts(version), cursor, count=CATALOG_PAGE)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                raise _unavailable(exc) from None
            yield page
            if cursor == 0:
                return

    async def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(await self.client.ping())
        except (RedisConnectionError, RedisTimeoutError):
            return False
