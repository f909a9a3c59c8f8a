"""Clients a job opens for its own run: each job is an entry point, so it reads settings and owns its clients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from sqlalchemy.engine import Engine

from common.db import make_engine


@contextmanager
def open_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the source database, disposed when the block ends."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def open_redis(redis_url: str) -> Iterator[redis.Redis[bytes]]:
    """A Redis client with bytes replies (as RQ needs them), closed when the block ends."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()
