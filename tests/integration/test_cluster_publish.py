"""Publish, verify, flip and roll back against a real 3-master Redis Cluster (keys of one version on every master)."""

from __future__ import annotations

import pytest
import redis

from batch.publish import pointer
from batch.publish.pointer import PointerChangedError, compare_and_set
from batch.publish.release import make_live, publish_release, rollback
from common.errors import ConfigError
from common.keys import KeyLayout
from common.redis_clients import is_cluster
from common.services import ensure_services
from tests.integration.test_publish import assert_complete, make_release


def test_the_url_selects_the_cluster_client_and_lists_spread_over_every_master(cluster_client, redis_cluster, keys):
    release = make_release()

    publish_release(cluster_client, keys, release, grace_seconds=3600)

    assert is_cluster(cluster_client)
    masters = redis_cluster.nodes()
    pattern = keys.version_prefix(release.meta.version) + "recs:*"
    lists_per_master = [len(list(node.scan_iter(match=pattern, count=1000))) for node in masters]
    assert len(masters) == 3 and all(lists_per_master), lists_per_master
    assert_complete(cluster_client, keys, release)
    assert cluster_client.smembers(keys.liked(200)) == {b"5", b"6"}


def test_publish_twice_then_rollback_swaps_current_and_previous(cluster_client, keys):
    first, second = make_release(1), make_release(2)
    publish_release(cluster_client, keys, first, grace_seconds=3600)

    old = publish_release(cluster_client, keys, second, grace_seconds=3600)

    assert old == first.meta.version
    assert cluster_client.get(keys.previous).decode() == first.meta.version
    assert rollback(cluster_client, keys) == (first.meta.version, second.meta.version)
    assert cluster_client.get(keys.current).decode() == first.meta.version
    assert cluster_client.get(keys.previous).decode() == second.meta.version
    assert_complete(cluster_client, keys, first)


def test_an_incomplete_version_is_never_made_live_on_the_cluster(cluster_client, keys):
    live = make_release(1)
    publish_release(cluster_client, keys, live, grace_seconds=3600)
    cluster_client.hset(keys.meta("half"), mapping={"created_at": "2021-12-30T00:00:00"})

    with pytest.raises(redis.ResponseError, match="incomplete"):
        make_live(cluster_client, keys, "half")

    assert cluster_client.get(keys.current).decode() == live.meta.version


def test_expired_versions_are_deleted_from_every_master(cluster_client, keys: KeyLayout):
    first, second, third = make_release(1), make_release(2), make_release(3)
    for release in (first, second):
        publish_release(cluster_client, keys, release, grace_seconds=3600)

    publish_release(cluster_client, keys, third, grace_seconds=0)

    assert not list(cluster_client.scan_iter(match=keys.version_prefix(first.meta.version) + "*", count=1000))
    assert_complete(cluster_client, keys, second)


def test_no_embedded_redis_is_started_for_a_cluster_that_does_not_answer(base_settings, tmp_path):
    with pytest.raises(ConfigError, match="start it first"):
        ensure_services(base_settings.database_url, "redis+cluster://127.0.0.1:1", tmp_path)


def test_current_is_set_only_if_it_still_holds_what_was_read(cluster_client, keys):
    cluster_client.set(keys.current, "a")

    with pytest.raises(PointerChangedError):
        compare_and_set(cluster_client, keys.current, "b", "c")
    compare_and_set(cluster_client, keys.current, "a", "c")

    assert cluster_client.get(keys.current) == b"c"


def test_a_flip_that_loses_a_race_reads_again_and_keeps_the_winner_as_previous(cluster_client, keys, monkeypatch):
    first, second, racing = make_release(1), make_release(2), make_release(3)
    for release in (first, second, racing):
        publish_release(cluster_client, keys, release, grace_seconds=3600)
    cluster_client.set(keys.current, first.meta.version)
    real = pointer.compare_and_set
    calls = []

    def another_publish_wins_once(client, key, expected, value):
        calls.append(expected)
        if len(calls) == 1:
            client.set(key, racing.meta.version)  # another publish flips between our read and our write
        real(client, key, expected, value)

    monkeypatch.setattr(pointer, "compare_and_set", another_publish_wins_once)

    assert make_live(cluster_client, keys, second.meta.version) == racing.meta.version
    assert calls == [first.meta.version, racing.meta.version]
    assert cluster_client.get(keys.current).decode() == second.meta.version
    assert cluster_client.get(keys.previous).decode() == racing.meta.version
