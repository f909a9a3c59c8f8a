"""User x post embedding features at full scale: building the tastes and the ALS factors, and scoring every user
against every post in blocks (163,205 x 7,023 = 1.15 billion pairs), with peak memory.

    .venv/bin/python bench/embed_features.py                          # full scale, 49 likes per user
    .venv/bin/python bench/embed_features.py --users 20000 --dim 64

Vectors and likes are random (the timings do not depend on their values): normalised 384-d post vectors like
all-MiniLM-L6-v2's, and likes spread over the 90 days before the cutoff.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np
import polars as pl

from batch.pipeline.embed import EmbeddingInfo, PostEmbeddings
from batch.pipeline.embed_features import UserPostSpace, als_space, taste_space
from common.logs import rss_mb

T = TypeVar("T")
CUTOFF = datetime(2021, 12, 15)


def timed(label: str, run: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = run()
    print(f"{label:<34} {time.perf_counter() - started:8.2f} s   rss {rss_mb():7.0f} MiB")
    return result


def random_embeddings(posts: int, dim: int, rng: np.random.Generator) -> PostEmbeddings:
    vectors = rng.standard_normal((posts, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.sort(rng.choice(np.arange(1, 7_320, dtype=np.int32), size=posts, replace=False))
    return PostEmbeddings(post_ids=ids, vectors=vectors, info=EmbeddingInfo(method="random", dim=dim))


def random_likes(user_ids: np.ndarray, post_ids: np.ndarray, per_user: int, rng: np.random.Generator) -> pl.DataFrame:
    rows = user_ids.size * per_user
    first = np.datetime64(CUTOFF - timedelta(days=90), "us")
    offsets = rng.integers(0, 90 * 86_400, size=rows).astype("timedelta64[s]").astype("timedelta64[us]")
    return pl.DataFrame(
        {
            "user_id": np.repeat(user_ids, per_user),
            "post_id": rng.choice(post_ids, size=rows),
            "timestamp": first + offsets,
        }
    )


def score_all(space: UserPostSpace, user_ids: np.ndarray, block_users: int) -> float:
    total = 0.0
    for _, block in space.score_blocks(user_ids, block_users):
        total += float(block[:, 0].sum())  # touch the block so nothing is skipped
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=163_205)
    parser.add_argument("--posts", type=int, default=7_023)
    parser.add_argument("--dim", type=int, default=384, help="embedding dimension (384: all-MiniLM-L6-v2)")
    parser.add_argument("--likes-per-user", type=int, default=49, help="about 8 million likes at full scale")
    parser.add_argument("--block-users", type=int, default=4096)
    parser.add_argument("--factors", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    user_ids = np.arange(200, 200 + args.users, dtype=np.int32)
    embeddings = random_embeddings(args.posts, args.dim, rng)
    likes = timed("generate likes", lambda: random_likes(user_ids, embeddings.post_ids, args.likes_per_user, rng))
    print(
        f"{args.users} users x {args.posts} posts = {args.users * args.posts / 1e9:.2f} G pairs, {likes.height} likes"
    )
    taste = timed("taste vectors", lambda: taste_space(likes, embeddings, CUTOFF))
    timed(f"taste cosine, all pairs ({args.dim}-d)", lambda: score_all(taste, user_ids, args.block_users))
    als = timed(
        f"als fit ({args.factors} factors)",
        lambda: als_space(likes, CUTOFF, user_ids, embeddings.post_ids, args.factors),
    )
    timed("als score, all pairs", lambda: score_all(als, user_ids, args.block_users))


if __name__ == "__main__":
    main()
