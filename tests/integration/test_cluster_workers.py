"""The workers against a real 3-master Redis Cluster: a sharded refresh on two `postrec worker` processes (queues on
a plain Redis, the serving store on the cluster), one user's rescore, and the likes sync."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
import sqlalchemy as sa
from rq.job import Job
from sqlalchemy.engine import Engine

from batch.world.seed import seed_database
from common.keys import KeyLayout
from common.settings import Settings
from tests.cluster_fixtures import LocalCluster
from tests.integration.test_worker_queue import POSTREC, environment
from tests.integration.test_worker_refresh_processes import Workers, assert_live_whole
from worker.queues import open_queue, purge_queues
from worker.roles import BATCH

pytestmark = pytest.mark.slow

SHARD_USERS = 100  # 300 users of the tiny world: 3 shards
# Only the control model (no text embeddings) and short lists: what is tested is where keys go, not the models.
# The refresh mechanics are under test, not the model: on the tiny world validation can rank control below a
# baseline, and the guard (tests/integration/test_publication_guard.py) would refuse to publish.
FAST = {
    "POSTREC_CONTROL_PERCENT": "100",
    "POSTREC_K": "40",
    "POSTREC_SHARD_USERS": str(SHARD_USERS),
    "POSTREC_ALLOW_WORSE": "1",
}


@pytest.fixture
def on_cluster(
    settings: Settings, engine: Engine, redis_cluster: LocalCluster, cluster_client: redis.Redis
) -> Settings:
    """The tiny world in PostgreSQL; the serving store on the cluster, the queues on the test's plain Redis."""
    seed_database(engine, "tiny", 42)
    return replace(settings, redis_url=redis_cluster.url, queue_url=settings.redis_url, control_percent=100, k=40)


@pytest.fixture
def queue_client(settings: Settings, key_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    purge_queues(client, key_prefix)
    client.close()


@pytest.fixture
def workers(on_cluster: Settings) -> Iterator[Workers]:
    env = environment(on_cluster, POSTREC_QUEUE_URL=on_cluster.queue_url, **FAST)
    pool = Workers(env)
    yield pool
    pool.stop()


def run(env: dict[str, str], *args: str) -> dict:
    answer = subprocess.run([POSTREC, *args], env=env, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr[-3000:]
    return json.loads(answer.stdout)


def test_refresh_on_two_workers_then_a_user_rescore_and_the_likes_sync(
    on_cluster: Settings,
    engine: Engine,
    cluster_client: redis.Redis,
    queue_client: redis.Redis,
    keys: KeyLayout,
    workers: Workers,
) -> None:
    workers.start(2)

    done = run(workers.env, "refresh", "--wait", "--timeout", "240")

    version = done["version"]
    assert cluster_client.get(keys.current) == version.encode()
    assert_live_whole(cluster_client, keys, version, users=done["users"])
    finished = open_queue(queue_client, on_cluster.prefix, BATCH).finished_job_registry
    shards = [job for job in Job.fetch_many(finished.get_job_ids(), connection=queue_client) if job]
    assert len({job.worker_name for job in shards if job.func_name.endswith("score_shard")}) == 2
    assert not list(queue_client.scan_iter(match=keys.version_prefix(version) + "*")), "store keys on the queue Redis"

    with engine.connect() as conn:
        user = int(conn.execute(sa.text("SELECT min(user_id) FROM user_data")).scalar_one())
    rescored = run(workers.env, "refresh", "--user", str(user), "--wait", "--timeout", "120")
    assert rescored == {"user_id": user, "version": version, "posts": cluster_client.llen(keys.recs(version, user))}

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO feed_data VALUES (now(), :user, 1, 'like', NULL)"), {"user": user})
    synced = run(workers.env, "sync-likes", "--wait", "--timeout", "120")
    assert synced["rows"] >= 1
    assert cluster_client.sismember(keys.liked(user), 1)
