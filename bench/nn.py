"""The neural sequence model's budgets (issue 15): training time, scoring time and peak memory, at full size.

The sequences are synthetic (random posts, 12% liked, random gaps) in the real shape: 163,205 users with 50 events
each, 7,023 posts with 384-dimensional text vectors. Time does not depend on what the tokens say, so this measures
what one cutoff costs at full scale without a 76-million-row world; a build trains at three cutoffs.

    python bench/nn.py                      # full size
    python bench/nn.py --users 3000 --posts 1500 --max-users 3000   # small scale

Prints: training seconds (sampled users, epochs), read-out seconds (every user's state), the seconds to score every
user against every post in blocks (the feature's share of exhaustive scoring) and to cut each user's top 200 from
them (the ``nn`` recommender's lists), and the process's peak RSS. The model runs on one thread
(``SequenceParams.threads``), so its CPU seconds are the wall seconds of an idle core: on a shared machine they are
the figure to read.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace

import numpy as np

from batch.pipeline.embed_features import UserPostSpace
from batch.ranking.sequence.histories import GAP_BUCKETS, LIKED, VIEWED, Histories
from batch.ranking.sequence.params import SequenceParams
from batch.ranking.sequence.readout import read_vectors
from batch.ranking.sequence.training import train_model
from batch.ranking.topk import top_k
from common.logs import configure_logging, peak_rss_mb, rss_mb

BLOCK_USERS = 4096
K = 200


def memory() -> str:
    return f"rss_mb={rss_mb():.0f} peak_mb={peak_rss_mb():.0f}"


def synthetic_histories(users: int, posts: int, length: int, seed: int) -> Histories:
    rng = np.random.default_rng(seed)
    shape = (users, length)
    return Histories(
        user_ids=np.arange(200, 200 + users, dtype=np.int32),
        post_ids=np.arange(1, posts + 1, dtype=np.int32),
        posts=rng.integers(1, posts + 1, shape, dtype=np.int64),
        actions=np.where(rng.random(shape) < 0.12, LIKED, VIEWED).astype(np.int64),
        gaps=rng.integers(1, GAP_BUCKETS, shape, dtype=np.int64),
    )


def score_all(space: UserPostSpace, user_ids: np.ndarray) -> tuple[float, float]:
    """Seconds to compute every block's scores, and seconds to cut the top K from them."""
    scoring = ranking = 0.0
    for start in range(0, user_ids.size, BLOCK_USERS):
        started = time.perf_counter()
        block = space.score_block(user_ids[start : start + BLOCK_USERS])
        scoring += time.perf_counter() - started
        started = time.perf_counter()
        top_k(block, K)
        ranking += time.perf_counter() - started
    return scoring, ranking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=163_205)
    parser.add_argument("--posts", type=int, default=7_023)
    parser.add_argument("--dim", type=int, default=384, help="width of the post text vectors")
    parser.add_argument("--max-users", type=int, default=SequenceParams().max_users)
    parser.add_argument("--epochs", type=int, default=SequenceParams().epochs)
    args = parser.parse_args()
    configure_logging("WARNING")
    logging.getLogger("batch.ranking.sequence").setLevel(logging.INFO)
    params = replace(SequenceParams(), max_users=args.max_users, epochs=args.epochs)
    histories = synthetic_histories(args.users, args.posts, params.length, seed=1)
    text = np.random.default_rng(2).normal(size=(args.posts, args.dim)).astype(np.float32)
    print(f"users={args.users} posts={args.posts} length={params.length} rss_mb={rss_mb():.0f}")

    started, cpu = time.perf_counter(), time.process_time()
    model = train_model(histories, text, params)
    trained, trained_cpu = time.perf_counter() - started, time.process_time() - cpu
    sampled = min(args.users, params.max_users)
    epochs = params.epochs
    print(f"train: {trained:.1f} s, cpu {trained_cpu:.1f} s (sampled users {sampled}, epochs {epochs}); {memory()}")

    started, cpu = time.perf_counter(), time.process_time()
    vectors = read_vectors(model, histories, params.threads)
    read_out = time.perf_counter() - started
    read_cpu = time.process_time() - cpu
    print(f"read out {args.users} user states: {read_out:.1f} s, cpu {read_cpu:.1f} s; {memory()}")

    space = UserPostSpace("nn_score", vectors.user_ids, vectors.user_vectors, vectors.post_ids, vectors.post_vectors)
    cpu = time.process_time()
    scoring, ranking = score_all(space, vectors.user_ids)
    scores_cpu = time.process_time() - cpu
    pairs = args.users * args.posts
    print(
        f"score {pairs:,} pairs in blocks of {BLOCK_USERS} users: {scoring:.1f} s; top {K} per user: {ranking:.1f} s"
        f" (cpu of both {scores_cpu:.1f} s); {memory()}"
    )
    total = read_out + scoring
    print(f"nn scoring total (read out + scores): {total:.1f} s, cpu {read_cpu + scores_cpu:.1f} s with top {K}")


if __name__ == "__main__":
    main()
