"""Users per second into Redis with K=200, and Redis memory per user.

    .venv/bin/python bench/publish.py --users 50000 --runs 3

Compares a plain redis-py pipeline of RPUSH (2,000 users per pipeline) with the publisher's writer (RESTORE of a
serialised listpack, checked against the server's DUMP, or bulk-encoded RPUSH where that check fails). Uses the
Redis at POSTREC_REDIS_URL under a throw-away key prefix, deleted afterwards. Prints medians over ``--runs``.
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
from common.keys import KeyLayout
from common.settings import load_settings

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
    args = parser.parse_args()
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
