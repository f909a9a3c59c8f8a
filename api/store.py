"""The API's Redis access: the hot path's one-round-trip script, and the reads that load a version.

The script runs over the pipelined connection of :mod:`api.wire`; everything else goes through redis-py. Both
turn any Redis failure, unreachable or an error reply (BUSY, NOAUTH, ...), into
:class:`~common.errors.StoreUnavailableError` (see :mod:`api.redis_errors`), which the API answers with 503, and
both wait at most the configured timeout (``POSTREC_API_REDIS_TIMEOUT_MS``) for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from api.cluster_wire import ClusterWire
from api.redis_errors import store_failure
from api.wire import RedisWire, Reply
from common.cluster_serving import USER_SLOT_KEYS, top_up, top_up_candidates, user_slot_call
from common.errors import NoPublishedVersionError
from common.keys import KeyLayout
from common.serving import RECOMMEND_KEYS, RECOMMEND_LUA, VERSION_GONE, recommend_call

CATALOG_PAGE: Final = 500


class Store:
    """Redis reads and the serving script, under one key layout."""

    def __init__(self, client: aioredis.Redis[bytes], wire: RedisWire | ClusterWire, keys: KeyLayout) -> None:
        """Wrap the two connections to one Redis.

        Args:
            client: A redis-py asyncio client (see :func:`common.redis_clients.api_client`), for all but the hot path.
            wire: The hot path's pipelined connection (one per master on Redis Cluster).
            keys: The key layout of the deployment's prefix.
        """
        self.client = client
        self._wire = wire
        self.keys = keys
        self._script = RECOMMEND_LUA.encode()
        self._sha = hashlib.sha1(self._script, usedforsecurity=False).hexdigest()
        self._popular: dict[str, list[bytes]] = {}  # on a cluster: the live version's popular list, for top-ups

    async def recommend(self, version: str, user_id: int, limit: int) -> list[bytes] | None:
        """Run the serving script: the filtered post ids (as Redis returns them), or None for an unknown user.

        Raises:
            StoreUnavailableError: Redis cannot be reached, did not answer in time, or answered with an error.
            NoPublishedVersionError: The version is gone from Redis (restarted empty, or the version was deleted).
        """
        try:
            if isinstance(self._wire, ClusterWire):
                reply = await self._recommend_across_slots(version, user_id, limit)
            else:
                script_keys, argv = recommend_call(self.keys, version, user_id, limit)
                reply = await self._evalsha(RECOMMEND_KEYS, *script_keys, *argv)
        except ResponseError as exc:
            raise store_failure(exc) from None
        if reply == VERSION_GONE:
            raise NoPublishedVersionError(
                f"version {version} is gone from Redis (restarted empty, or the version was deleted): "
                "see 'Redis restarted empty' in docs/operations.md"
            )
        return reply  # type: ignore[no-any-return]

    async def _evalsha(self, key_count: int, *args: str | int) -> Reply:
        try:
            return await self._wire.call(b"EVALSHA", self._sha, key_count, *args)
        except NoScriptError:  # a restarted or flushed Redis forgot the script: load it once and go on
            await self._wire.call(b"SCRIPT", b"LOAD", self._script)
            return await self._wire.call(b"EVALSHA", self._sha, key_count, *args)

    async def _recommend_across_slots(self, version: str, user_id: int, limit: int) -> Reply:
        """The script on the user's slot, then the popular top-up when the list ran short (see
        :mod:`common.cluster_serving`): one round trip, two on a short list or an unknown user."""
        script_keys, argv = user_slot_call(self.keys, version, user_id, limit)
        chosen = await self._evalsha(USER_SLOT_KEYS, *script_keys, *argv)
        if chosen is None:  # no list: an unknown user, unless the version is gone (its popular list with it)
            return None if await self._wire.call(b"EXISTS", self.keys.popular(version)) else VERSION_GONE
        if len(chosen) >= limit:
            return chosen
        candidates = top_up_candidates(chosen, await self._popular_list(version))
        if not candidates:
            return chosen
        liked = await self._wire.call(b"SMISMEMBER", self.keys.liked(user_id), *candidates)
        return top_up(chosen, candidates, liked, limit)

    async def _popular_list(self, version: str) -> list[bytes]:
        popular = self._popular.get(version)
        if popular is None:
            popular = await self._wire.call(b"LRANGE", self.keys.popular(version), 0, -1)
            self._popular = {version: popular}  # only the version being served: one list in memory
        return popular

    async def current_version(self) -> str | None:
        """Id of the live version, or None when nothing is published."""
        try:
            raw = await self.client.get(self.keys.current)
        except RedisError as exc:
            raise store_failure(exc) from None
        return None if raw is None else raw.decode()

    async def version_meta(self, version: str) -> dict[bytes, bytes]:
        """The raw meta hash of a version (empty when the version is gone)."""
        try:
            return await self.client.hgetall(self.keys.meta(version))
        except RedisError as exc:
            raise store_failure(exc) from None

    async def catalog_pages(self, version: str) -> AsyncIterator[dict[bytes, bytes]]:
        """The version's post catalog in pages of about :data:`CATALOG_PAGE` posts.

        Paging keeps each reply small (a full catalog is megabytes), so neither Redis nor this process stalls
        the requests being served meanwhile.
        """
        cursor = 0
        while True:
            try:
                cursor, page = await self.client.hscan(self.keys.posts(version), cursor, count=CATALOG_PAGE)
            except RedisError as exc:
                raise store_failure(exc) from None
            yield page
            if cursor == 0:
                return

    async def ping(self) -> bool:
        """True when Redis answers (an error reply such as BUSY or NOAUTH is no answer)."""
        try:
            return bool(await self.client.ping())
        except RedisError:
            return False
