"""The embedded default: where nothing answers at the configured URLs, real servers are started and work."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

from common.errors import ConfigError
from common.services import ensure_services, postgres_answers, redis_answers, stop_services


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Traversable by the unprivileged user PostgreSQL runs as when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix="postrec-embedded-"))
    path.chmod(0o755)
    yield path
    stop_services(path)
    shutil.rmtree(path, ignore_errors=True)


def test_starts_real_servers_where_nothing_listens(data_dir: Path) -> None:
    pg_url = f"postgresql://postgres@127.0.0.1:{free_port()}/postrec"
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    assert not postgres_answers(pg_url) and not redis_answers(redis_url)

    assert ensure_services(pg_url, redis_url, data_dir) == ["postgresql", "redis"]
    assert ensure_services(pg_url, redis_url, data_dir) == []  # idempotent: both answer now

    port = int(pg_url.split(":")[2].split("/")[0])
    with psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE round_trip (x int); INSERT INTO round_trip VALUES (41)")
        cursor.execute("SELECT x + 1 FROM round_trip")
        assert cursor.fetchone() == (42,)
    conn.close()
    client = redis.Redis.from_url(redis_url)
    client.set("round-trip", "ok")
    assert client.get("round-trip") == b"ok"
    client.close()

    assert sorted(stop_services(data_dir)) == ["postgresql", "redis"]
    assert not postgres_answers(pg_url) and not redis_answers(redis_url)


def test_remote_url_that_does_not_answer_is_not_started(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="not local"):
        ensure_services("postgresql://postgres@192.0.2.1:5432/postrec", "redis://127.0.0.1:1/0", data_dir)
