"""Exhaustive scoring throughput against CatBoost's own predict on the same model and the same matrix.

    .venv/bin/python bench/score.py --scale full --users 8000 --runs 3 [--model DIR]

The model is a saved artifact (``--model``, default: the latest under POSTREC_DATA_DIR) or, without one, a model
trained here with the production TrainParams (trees, depth) on random rows. Features are random arrays of the
scale's shape (users x posts), with ~50 liked posts per user to leave out: speed depends on the model's trees and
borders and on the matrix size, not on what the values mean. Prints medians over ``--runs``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from datetime import datetime
from pathlib import Path

import catboost
import numpy as np

from batch.pipeline.artifacts import MissingArtifactError, latest_artifact_path, load_artifact
from batch.pipeline.features import (
    FEATURE_NAMES,
    POST_FEATURES,
    USER_FEATURES,
    USER_TOPIC_FEATURES,
    FeatureSet,
    block_matrix,
)
from batch.pipeline.score import BLOCK_ROWS, block_users, moment_features_at, predict_raw, score_users
from batch.pipeline.train import TrainParams
from batch.world.facts import SCALES
from common.settings import load_settings

FULL_PAIRS = 163_205 * 7_023
TOPICS = 8


def random_features(n_users: int, n_posts: int, liked_per_user: int, seed: int) -> FeatureSet:
    rng = np.random.default_rng(seed)
    liked = np.stack([rng.choice(n_posts, size=min(liked_per_user, n_posts), replace=False) for _ in range(n_users)])
    return FeatureSet(
        cutoff=datetime(2021, 12, 30),
        user_ids=np.arange(200, 200 + n_users, dtype=np.int32),
        users=(rng.random((n_users, len(USER_FEATURES))) * 50).astype(np.float32),
        post_ids=np.arange(1, n_posts + 1, dtype=np.int32),
        posts=(rng.random((n_posts, len(POST_FEATURES))) * 50).astype(np.float32),
        post_topics=rng.integers(0, TOPICS, n_posts),
        user_topics=rng.random((n_users, TOPICS, len(USER_TOPIC_FEATURES))).astype(np.float32),
        liked_indptr=np.arange(n_users + 1, dtype=np.int64) * liked.shape[1],
        liked_posts=np.sort(liked, axis=1).ravel().astype(np.int64),
    )


def load_or_train_model(model_dir: Path | None, seed: int) -> tuple[catboost.CatBoost, str]:
    try:
        path = model_dir or latest_artifact_path(load_settings().data_dir)
        return load_artifact(path).model, f"artifact {path}"
    except MissingArtifactError:
        params = TrainParams()
        rng = np.random.default_rng(seed)
        matrix = (rng.random((50_000, len(FEATURE_NAMES))) * 50).astype(np.float32)
        labels = (matrix[:, 0] + matrix[:, 12] + rng.random(50_000) * 40 > 70).astype(int)
        model = catboost.CatBoostClassifier(
            iterations=params.iterations, depth=params.depth, random_seed=seed, verbose=False, thread_count=-1
        )
        model.fit(catboost.Pool(matrix, labels, feature_names=list(FEATURE_NAMES)))
        return model, f"trained here on random rows ({params.iterations} trees, depth {params.depth})"


def time_pipeline(model: catboost.CatBoost, features: FeatureSet, k: int) -> tuple[float, float]:
    """(pairs per wall second, pairs per CPU second of this process)."""
    started, cpu = time.perf_counter(), time.process_time()
    score_users(model, features, features.user_ids, k)
    pairs = features.user_ids.size * features.post_ids.size
    return pairs / (time.perf_counter() - started), pairs / (time.process_time() - cpu)


def time_catboost(model: catboost.CatBoost, matrix: np.ndarray, repeats: int) -> tuple[float, float]:
    """(rows per wall second, rows per CPU second) of CatBoost's predict alone."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        predict_raw(model, matrix)
    rows = matrix.shape[0] * repeats
    return rows / (time.perf_counter() - started), rows / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=sorted(SCALES))
    parser.add_argument("--users", type=int, default=None, help="score only this many users (default: the scale's)")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()

    scale = SCALES[args.scale]
    n_users = min(args.users or scale.users, scale.users)
    model, origin = load_or_train_model(args.model, seed=0)
    features = random_features(n_users, scale.posts, liked_per_user=50, seed=1)
    block = np.arange(min(block_users(scale.posts, BLOCK_ROWS), n_users))
    matrix = block_matrix(features, block, moment_features_at(features))
    repeats = max(1, n_users // block.size)
    print(f"model: {origin}; trees={model.tree_count_}; scale={args.scale} users={n_users} posts={scale.posts}")

    pipeline, own = [], []
    for _ in range(args.runs):
        pipeline.append(time_pipeline(model, features, args.k))
        own.append(time_catboost(model, matrix, repeats))
    report(pipeline, own)


def _median(values: list[tuple[float, float]], index: int) -> float:
    return statistics.median(value[index] for value in values)


def report(pipeline: list[tuple[float, float]], own: list[tuple[float, float]]) -> None:
    pairs_s, rows_s = _median(pipeline, 0), _median(own, 0)
    runs = ", ".join(f"{wall / 1e6:.2f}" for wall, _ in pipeline)
    own_runs = ", ".join(f"{wall / 1e6:.2f}" for wall, _ in own)
    print(f"exhaustive scoring: {pairs_s / 1e6:.2f} M pairs/s (runs: {runs})")
    print(f"catboost predict, same matrix: {rows_s / 1e6:.2f} M rows/s (runs: {own_runs})")
    print(f"ratio: {pairs_s / rows_s:.2f} (budget >= 0.70)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (budget <= 4096)")
    print(f"full scale 163,205 x 7,023 pairs: {FULL_PAIRS / pairs_s / 60:.1f} min (budget <= 10)")
    # On a shared machine wall time counts other processes' load; CPU time per pair does not.
    cpu_pairs, cpu_rows = _median(pipeline, 1), _median(own, 1)
    print(
        f"per CPU second: scoring {cpu_pairs / 1e6:.2f} M pairs, catboost {cpu_rows / 1e6:.2f} M rows, "
        f"ratio {cpu_pairs / cpu_rows:.2f}; full scale on 2 dedicated cores: {FULL_PAIRS / cpu_pairs / 2 / 60:.1f} min"
    )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
