"""Shared fixtures: a fresh PostgreSQL database and a fresh Redis key prefix per test, against the real servers.

The servers are the ones at POSTREC_DATABASE_URL / POSTREC_REDIS_URL (``make test`` starts embedded ones where
nothing answers). Each test gets its own database (dropped afterwards) and its own key prefix (deleted afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from common.db import init_schema, make_engine, sqlalchemy_url
from common.keys import KeyLayout
from common.settings import Settings, load_settings

# Marks the key prefixes of this test session, so that its clean-up never touches another session's keys.
SESSION = uuid.uuid4().hex[:6]

# The Redis Cluster fixtures (a cluster is started only by the tests that ask for one).
pytest_plugins = ["tests.cluster_fixtures"]


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The servers' settings, with one post vectors' cache for the whole session.

    A vector depends on its text alone, and every build of the tiny world embeds the same 150 texts: sharing the
    cache (``POSTREC_EMBEDDING_CACHE``, inherited by the CLI and worker processes the tests start) embeds them once
    and spares each later process the sentence model's load. A test about the cache itself sets its own.
    """
    os.environ.setdefault("POSTREC_EMBEDDING_CACHE", str(tmp_path_factory.mktemp("embeddings")))
    return load_settings()


@pytest.fixture(scope="session", autouse=True)
def no_rq_keys_left(base_settings: Settings) -> Iterator[None]:
    """RQ keeps its state under ``rq:*`` whatever the key prefix: what the tests' queues, workers and schedulers
    left there is deleted once the session ends (tests that use RQ also clean up after themselves)."""
    yield
    from worker.rq_state import purge_deployment

    client = redis.Redis.from_url(base_settings.redis_url)
    try:
        purge_deployment(client, f"postrec_test_{SESSION}_*")
    except redis.ConnectionError:  # the unit tests run without Redis
        pass
    finally:
        client.close()


def _admin_engine(settings: Settings) -> Engine:
    url = sqlalchemy_url(settings.database_url).set(database="postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture
def database_url(base_settings: Settings) -> Iterator[str]:
    """URL of a new, empty database that is dropped after the test."""
    name = f"postrec_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(base_settings)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy_url(base_settings.database_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Engine on the test's own database, with the source schema created."""
    eng = make_engine(database_url)
    init_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def key_prefix() -> str:
    return f"postrec_test_{SESSION}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(key_prefix: str) -> KeyLayout:
    return KeyLayout(key_prefix)


@pytest.fixture
def redis_client(base_settings: Settings, key_prefix: str) -> Iterator[redis.Redis]:
    """Client on the real Redis; every key under the test's prefix is deleted afterwards."""
    client = redis.Redis.from_url(base_settings.redis_url)
    yield client
    for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def settings(base_settings: Settings, database_url: str, key_prefix: str, tmp_path: object) -> Settings:
    """Settings pointing at the test's own database, key prefix and data dir."""
    from dataclasses import replace
    from pathlib import Path

    return replace(base_settings, database_url=database_url, prefix=key_prefix, data_dir=Path(str(tmp_path)))
