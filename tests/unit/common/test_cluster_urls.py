"""Cluster URLs name the seed nodes; the queue URL defaults to the plain Redis URL and is required with a cluster."""

from __future__ import annotations

import pytest

from common.errors import ConfigError, StoreUnavailableError
from common.redis_clients import ClusterUrl, Role, is_cluster_url, parse_cluster_url, redis_client
from common.services import redis_answers
from common.settings import load_settings, queue_url


def test_a_cluster_url_names_every_seed_node_and_the_credentials():
    url = "rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002/0"

    assert is_cluster_url(url)
    assert parse_cluster_url(url) == ClusterUrl(
        nodes=(("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)),
        username="app",
        password="s@cret",  # noqa: S106
        tls=True,
    )


def test_a_password_may_hold_a_slash_or_an_at_sign():
    assert parse_cluster_url("redis+cluster://:a/b@c@10.0.0.1:7000/").password == "a/b@c"  # noqa: S105


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://h:1", "unix:///tmp/redis.sock"])
def test_plain_urls_are_not_cluster_urls(url):
    assert not is_cluster_url(url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+cluster://", "names no cluster node"),
        ("redis+cluster://10.0.0.1", "not host:port"),
        ("redis+cluster://10.0.0.1:7000/3", "only database 0"),
    ],
)
def test_a_malformed_cluster_url_says_what_is_wrong(url, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_cluster_url(url)


def test_the_queue_url_defaults_to_a_plain_redis_url():
    settings = load_settings({"POSTREC_REDIS_URL": "redis://127.0.0.1:6379/4"})

    assert queue_url(settings) == "redis://127.0.0.1:6379/4"


def test_a_cluster_needs_its_own_queue_url():
    cluster = {"POSTREC_REDIS_URL": "redis+cluster://127.0.0.1:7000"}

    with pytest.raises(ConfigError, match="POSTREC_QUEUE_URL"):
        queue_url(load_settings(cluster))
    assert queue_url(load_settings({**cluster, "POSTREC_QUEUE_URL": "redis://q:6379/1"})) == "redis://q:6379/1"


def test_the_queue_url_cannot_be_a_cluster():
    with pytest.raises(ConfigError, match="RQ cannot use a cluster"):
        load_settings({"POSTREC_QUEUE_URL": "redis+cluster://127.0.0.1:7000"})


def test_an_unreachable_cluster_is_named_without_its_password():
    with pytest.raises(StoreUnavailableError, match=r"Redis Cluster at 127\.0\.0\.1:1 is unreachable") as caught:
        redis_client("redis+cluster://:hunter2@127.0.0.1:1", Role.PROBE)
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_cluster_does_not_answer():
    assert not redis_answers("redis+cluster://127.0.0.1:1")
