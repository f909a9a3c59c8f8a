"""The app factory. Every app owns its parts (store, version watcher, metrics); nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

import redis.asyncio as aioredis
from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from api.cluster_wire import ClusterWire
from api.errors import make_error_handler
from api.metrics import Metrics, metrics_middleware
from api.routes import ApiParts, build_route_handlers
from api.served_log import ServedLog
from api.serving import Recommender
from api.store import Store
from api.versions import VersionWatcher
from api.wire import RedisAddress, RedisWire
from common.keys import KeyLayout
from common.redis_clients import api_client, is_cluster_url
from common.settings import Settings, load_settings

API_DESCRIPTION: Final = (
    "Post recommendations for the users of a student social network: for each user, the next posts of a ranked list "
    "computed offline (the live published version), without the posts the user has liked since."
)


def create_app(settings: Settings | None = None, redis: aioredis.Redis[bytes] | None = None) -> Litestar:
    """Build the API.

    Args:
        settings: Configuration; read from the environment when omitted (the ASGI server's factory call).
        redis: An asyncio Redis client to use (and leave open); when omitted the app creates a fail-fast one
            from ``settings.redis_url`` and closes it on shutdown.
    """
    settings = settings or load_settings()
    client = redis if redis is not None else api_client(settings.redis_url, settings.api_redis_timeout_ms / 1000)
    wire = _hot_path_wire(settings, client)
    keys = KeyLayout(settings.prefix)
    store = Store(client, wire, keys)
    watcher = VersionWatcher(store)
    metrics = Metrics()
    served_log = ServedLog(wire, keys, settings.served_stream_maxlen, metrics)
    recommender = Recommender(store, watcher, served_log)
    parts = ApiParts(recommender=recommender, watcher=watcher, store=store, metrics=metrics)
    return Litestar(
        route_handlers=build_route_handlers(parts, max_limit=settings.k),
        lifespan=[_lifespan(watcher, served_log, wire, client, close_client=redis is None)],
        middleware=[metrics_middleware(metrics)],
        exception_handlers={Exception: make_error_handler(metrics)},
        openapi_config=OpenAPIConfig(title="postrec", version="0.1.0", description=API_DESCRIPTION),
        logging_config=None,
    )


def _hot_path_wire(settings: Settings, client: aioredis.Redis[bytes]) -> RedisWire | ClusterWire:
    """The hot path's connection: one per master of a Redis Cluster, else one to the client's Redis."""
    timeout_s = settings.api_redis_timeout_ms / 1000
    if is_cluster_url(settings.redis_url):
        return ClusterWire.from_url(settings.redis_url, timeout_s)
    return RedisWire(RedisAddress.of_client(client), timeout_s)


def _lifespan(
    watcher: VersionWatcher,
    served_log: ServedLog,
    wire: RedisWire | ClusterWire,
    client: aioredis.Redis[bytes],
    close_client: bool,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await watcher.start()
        try:
            yield
        finally:
            await watcher.stop()
            await served_log.drain()
            await wire.close()
            if close_client:
                await client.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose()

    return lifespan
