"""The evaluation's reads on a real Redis Cluster answer exactly what they answer on one Redis."""

from __future__ import annotations

import numpy as np
import redis

from batch.evaluation.evaluate import read_served
from batch.publish.release import publish_release
from common.keys import KeyLayout
from tests.integration.test_publish import N_USERS, make_release


def test_read_served_on_the_cluster_equals_one_redis(
    cluster_client: redis.Redis, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    release = make_release(seed=5)
    users = release.rankings.user_ids.astype(np.int64)
    rng = np.random.default_rng(5)
    likes = {}  # some users like most of their list, so their answers are topped up from popular
    for user, row in zip(users.tolist(), release.rankings.post_ids, strict=True):
        posts = row[row >= 0]
        likes[user] = rng.choice(posts, size=int(rng.integers(0, posts.size)), replace=False).tolist()
    for client in (cluster_client, redis_client):
        publish_release(client, keys, release, grace_seconds=3600)
        for user, liked in likes.items():
            if liked:
                client.sadd(keys.liked(user), *liked)

    on_cluster = read_served(cluster_client, keys, release.meta.version, users, limit=10)
    on_one = read_served(redis_client, keys, release.meta.version, users, limit=10)

    assert on_cluster.shape == (N_USERS, 10)
    np.testing.assert_array_equal(on_cluster, on_one)
