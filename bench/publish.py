"""Users per second into Redis with K=200, and Redis memory per user.

    .venv/bin/python bench/publish.py --users 50000 --runs 3

Compares a plain redis-py pipeline of RPUSH (2,000 users per pipeline) with the publisher's writer (RESTORE of a
serialised listpack, checked against the server's DUMP, or bulk-encoded RPUSH where that check fails). Uses the
Redis at POSTREC_REDIS_URL under a throw-away key prefix, deleted afterwards. Prints medians over ``--runs``.

    .venv/bin/python bench/publish.py --users 50000 --runs 3 --cluster

runs the publisher's list writing (``write_rankings``: the same writer, once per master) against a local 3-master
Redis Cluster started for the run (``tests/cluster_fixtures.py``), beside the same on the one Redis.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import numpy as np
import numpy.typing as npt
import redis

from batch.publish.rankings_wire import RankingWriter
from batch.publish.release import write_rankings
from batch.ranking.topk import TopK
from common.keys import KeyLayout
from common.redis_clients import Role, redis_client
from common.settings import load_settings
from tests.cluster_fixtures import LocalCluster, redis_server_binary

N_POSTS = 7_023


def rankings(n_users: int, k: int, seed: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    rng = np.random.default_rng(seed)
    catalog = np.sort(rng.choice(np.arange(1, 7_320), size=N_POSTS, replace=False)).astype(np.int32)
    posts = np.stack([catalog[rng.choice(N_POSTS, size=k, replace=False)] for _ in range(n_users)])
    return np.arange(200, 200 + n_users, dtype=np.int32), posts


def plain_pipeline(
    client: redis.Redis[bytes], keys: KeyLayout, users: npt.NDArray[np.int32], posts: npt.NDArray[np.int32]
) -> None:
    for start in range(0, users.size, 2_000):
        with client.pipeline(transaction=False) as pipe:
            for user_id, row in zip(
                users[start : start + 2_000].tolist(), posts[start : start + 2_000].tolist(), strict=True
            ):
                pipe.rpush(keys.recs("v", user_id), *row)
            pipe.execute()


def writer(
    client: redis.Redis[bytes], keys: KeyLayout, users: npt.NDArray[np.int32], posts: npt.NDArray[np.int32]
) -> None:
    RankingWriter(client, keys, "v").write(users, posts)


def per_master(
    client: redis.Redis[bytes], keys: KeyLayout, users: npt.NDArray[np.int32], posts: npt.NDArray[np.int32]
) -> None:
    write_rankings(client, keys, "v", TopK(users, posts, np.zeros(posts.shape, dtype=np.float32)))


def rate(client: redis.Redis[bytes], users: npt.NDArray[np.int32], posts: npt.NDArray[np.int32]) -> float:
    """Users per second of ``write_rankings``, lists checked and deleted after."""
    keys = KeyLayout(f"bench_{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    per_master(client, keys, users, posts)
    seconds = time.perf_counter() - started
    if client.llen(keys.recs("v", int(users[-1]))) != posts.shape[1]:
        raise RuntimeError("a list is missing or short")
    clean(client, keys)
    return users.size / seconds


def compare_cluster(users: npt.NDArray[np.int32], posts: npt.NDArray[np.int32], runs: int) -> None:
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("--cluster needs a redis-server binary")
    cluster = LocalCluster(binary)
    cluster.start()
    try:
        clients = {"one Redis": redis_client(load_settings().redis_url, Role.BATCH)}
        clients["3-master cluster"] = redis_client(cluster.url, Role.BATCH)
        for _ in range(runs):  # interleaved, so both see the same load
            for name, client in clients.items():
                print(f"write_rankings on {name}: {rate(client, users, posts):,.0f} users/s", flush=True)
    finally:
        cluster.stop()


def clean(client: redis.Redis[bytes], keys: KeyLayout) -> None:
    batch = list(client.scan_iter(match=f"{keys.prefix}:*", count=5_000))
    for start in range(0, len(batch), 5_000):
        client.unlink(*batch[start : start + 5_000])


def run(method, client, users, posts) -> tuple[float, float, int]:  # noqa: ANN001 - a bench helper
    keys = KeyLayout(f"bench_{uuid.uuid4().hex[:8]}")
    before = int(client.info("memory")["used_memory"])
    started = time.perf_counter()
    method(client, keys, users, posts)
    seconds = time.perf_counter() - started
    per_user = (int(client.info("memory")["used_memory"]) - before) / users.size
    sample = int(client.memory_usage(keys.recs("v", int(users[0]))) or 0)
    if client.llen(keys.recs("v", int(users[-1]))) != posts.shape[1]:
        raise RuntimeError("a list is missing or short")
    clean(client, keys)
    return users.size / seconds, per_user, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cluster", action="store_true", help="write_rankings on a local cluster and on one Redis")
    args = parser.parse_args()
    if args.cluster:
        compare_cluster(*rankings(args.users, args.k, seed=0), args.runs)
        return
    client: redis.Redis[bytes] = redis.Redis.from_url(load_settings().redis_url)
    print(f"redis {client.info('server')['redis_version']}; users={args.users} k={args.k}")
    users, posts = rankings(args.users, args.k, seed=0)
    for name, method in (("plain pipelined RPUSH", plain_pipeline), ("publisher writer", writer)):
        results = [run(method, client, users, posts) for _ in range(args.runs)]
        rate = statistics.median(r[0] for r in results)
        memory = statistics.median(r[1] for r in results)
        runs = ", ".join(f"{r[0]:,.0f}" for r in results)
        print(f"{name}: {rate:,.0f} users/s (runs: {runs})")
        print(f"  Redis memory {memory:,.0f} B/user (used_memory delta), MEMORY USAGE of one list {results[0][2]} B")


if __name__ == "__main__":
    main()
