"""The evaluation on a real Redis Cluster: its reads answer exactly what they answer on one Redis, and a whole
`evaluate` of the tiny world runs there and cleans up after itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import redis
from sqlalchemy.engine import Engine

from batch.evaluation.evaluate import EvaluateOptions, read_served, run_evaluation
from batch.pipeline.embed import TFIDF_SVD
from batch.publish.release import publish_release
from batch.world.seed import seed_database
from common.keys import KeyLayout
from common.settings import Settings
from tests.cluster_fixtures import LocalCluster
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


def test_evaluate_runs_on_the_cluster_and_leaves_no_key(
    engine: Engine, settings: Settings, redis_cluster: LocalCluster, cluster_client: redis.Redis, tmp_path: Path
) -> None:
    seed_database(engine, "tiny", 42)
    on_cluster = replace(settings, redis_url=redis_cluster.url)

    # Short (no oracle, no sequence model, TF-IDF): what is tested is the store, not the models.
    options = EvaluateOptions(out_dir=tmp_path, embedding=TFIDF_SVD, k=40, oracle=False)
    report = run_evaluation(on_cluster, engine, options)

    scores = {score.name: score.hitrate for score in report.scores}
    assert scores["popular"] < scores["control"]
    assert list(cluster_client.scan_iter(match=f"{settings.prefix}*")) == []
