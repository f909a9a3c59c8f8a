"""Clients a job opens for its own run: each job is an entry point, so it reads settings and owns its clients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from sqlalchemy.engine import Engine

from common.db import make_engine
from common.redis_clients import Role, redis_client


@contextmanager
def open_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the source database, disposed when the block ends."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def open_redis(redis_url: str, role: Role = Role.JOB) -> Iterator[redis.Redis[bytes]]:
    """A Redis client with bytes replies (as RQ needs them) and the role's timeouts, closed when the block ends."""
    client = redis_client(redis_url, role)
    try:
        yield client
    finally:
        client.close()
