"""Publish (or delete) a throwaway version for bench/api.sh, with the layout the batch writes.

    PYTHONPATH=. .venv/bin/python bench/api_publish.py publish --prefix P --version V --users 1000 --posts 1000
    PYTHONPATH=. .venv/bin/python bench/api_publish.py delete --prefix P

Full scale is ``--users 163205 --posts 7023 --words 300``: 7,023 posts of a few hundred words and 163,205 lists
of K post ids.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from common.columns import TOPICS
from common.keys import KeyLayout
from common.payloads import Post
from common.redis_clients import Role, redis_client
from common.settings import load_settings
from tests.api_fixtures import Version, delete_prefix, publish

FIRST_USER = 200
VOCABULARY = [f"w{i}" for i in range(5_000)]


def make_version(version: str, users: int, posts: int, words: int, k: int, seed: int = 7) -> Version:
    """Random but fixed lists of K distinct posts per user, post ids with gaps like the real ones."""
    rng = random.Random(seed)
    post_ids = sorted(rng.sample(range(1, posts * 21 // 20 + 1), posts))
    catalog = {
        pid: Post(id=pid, text=" ".join(rng.choices(VOCABULARY, k=words)), topic=TOPICS[pid % len(TOPICS)])
        for pid in post_ids
    }
    k = min(k, posts)
    lists = {user: rng.sample(post_ids, k) for user in range(FIRST_USER, FIRST_USER + users)}
    return Version(version, lists, catalog, popular=post_ids[:k], k=k)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("publish", "delete"))
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--version", default="bench")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--posts", type=int, default=1_000)
    parser.add_argument("--words", type=int, default=12)
    parser.add_argument("--k", type=int, default=200)
    args = parser.parse_args()
    client = redis_client(load_settings().redis_url, Role.BATCH)  # a cluster client for redis+cluster:// URLs
    if args.action == "delete":
        delete_prefix(client, args.prefix)
        return 0
    started = time.perf_counter()
    version = make_version(args.version, args.users, args.posts, args.words, args.k)
    publish(client, KeyLayout(args.prefix), version)
    print(time.time())  # when `current` was set, for the bench's flip-to-served figure
    seconds = time.perf_counter() - started
    print(
        f"published {args.version}: users={args.users} posts={args.posts} words={args.words} in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
