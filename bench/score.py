"""Exhaustive scoring throughput, with and without the collaborative features, against CatBoost's own predict.

    .venv/bin/python bench/score.py --scale full --users 6000 --runs 3 [--model DIR]

The model is the ``control`` model of a saved artifact (``--model``; it must read the collaborative features) or,
without one, models trained here with the production TrainParams (trees, depth) on random rows: one on the base
features, one on the base and collaborative features. The features are random arrays of the scale's shape (users x
posts) with ~50 liked and ~375 viewed posts per user (the real medians); the collaborative features' post side is
fitted on those likes (EASE's posts x posts inversion, item-kNN, ALS), so the sparse x dense products have the
real shapes. Speed depends on the trees, the matrix size and those shapes, not on what the values mean. Prints
medians over ``--runs`` and the collaborative features' fit time.

The ``test`` model is control's trees plus ``TrainParams.correction_iterations`` correction trees
(``TrainParams.on_control``), so it is timed as the collaborative model summed with its own first that many trees:
test's tree count on control's columns, at control's depth (test's correction trees are shallower,
``TrainParams.correction_depth``, so this errs slow). Test's four text columns (the taste cosine, the text kNN and
the two cluster lifts) are one product per block each and are not timed here: the build's score step (``postrec
score``) includes them. The full-scale figure for the A/B split weighs both by the default 50%.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import catboost
import numpy as np
import polars as pl

from batch.pipeline.artifacts import load_artifact
from batch.pipeline.collab_features import COLLAB_NAMES, CollabModel, CollabParams, fit_collab
from batch.pipeline.features import (
    FEATURE_NAMES,
    POST_FEATURES,
    USER_FEATURES,
    USER_TOPIC_FEATURES,
    FeatureSet,
)
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.options import TrainParams
from batch.pipeline.score import BLOCK_ROWS, block_users, moment_features_at, predict_raw, score_users
from batch.world.facts import SCALES
from common.ab import CONTROL
from common.columns import Col

FULL_PAIRS = 163_205 * 7_023
COLLAB = "with collab"
TEST_TREES = "with collab, test's tree count"
CONTROL_SHARE = 0.5  # Settings.control_percent's default
TOPICS = 8
CUTOFF = datetime(2021, 12, 30)


def _csr(rng: np.random.Generator, n_users: int, n_posts: int, per_user: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [np.sort(rng.choice(n_posts, size=min(per_user, n_posts), replace=False)) for _ in range(n_users)]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([row.size for row in rows])
    return indptr, np.concatenate(rows).astype(np.int16 if n_posts < 2**15 else np.int32)


def random_features(n_users: int, n_posts: int, liked_per_user: int, viewed_per_user: int, seed: int) -> FeatureSet:
    """A feature set of random values with the given users, posts, likes and views per user."""
    rng = np.random.default_rng(seed)
    liked_indptr, liked_posts = _csr(rng, n_users, n_posts, liked_per_user)
    viewed_indptr, viewed_posts = _csr(rng, n_users, n_posts, viewed_per_user)
    return FeatureSet(
        cutoff=CUTOFF,
        user_ids=np.arange(200, 200 + n_users, dtype=np.int32),
        users=(rng.random((n_users, len(USER_FEATURES))) * 50).astype(np.float32),
        post_ids=np.arange(1, n_posts + 1, dtype=np.int32),
        posts=(rng.random((n_posts, len(POST_FEATURES))) * 50).astype(np.float32),
        post_topics=rng.integers(0, TOPICS, n_posts),
        user_topics=rng.random((n_users, TOPICS, len(USER_TOPIC_FEATURES))).astype(np.float32),
        liked_indptr=liked_indptr,
        liked_posts=liked_posts,
        viewed_indptr=viewed_indptr,
        viewed_posts=viewed_posts,
        like_prior=0.1,
        # Each user's latest like on one of the 30 days before the cutoff, as like_rows dates them.
        last_like_days=np.where(
            np.diff(liked_indptr) > 0, (CUTOFF - datetime(1970, 1, 1)).days - rng.uniform(0, 30, n_users), np.nan
        ),
    )


def like_rows(features: FeatureSet, seed: int) -> pl.DataFrame:
    """The feature set's likes as rows dated within the 30 days before its cutoff."""
    rng = np.random.default_rng(seed)
    counts = np.diff(features.liked_indptr)
    ages = rng.random(int(counts.sum())) * 30
    return pl.DataFrame(
        {
            Col.TIMESTAMP: [CUTOFF - timedelta(days=float(age)) for age in ages],
            Col.USER_ID: np.repeat(features.user_ids, counts),
            Col.POST_ID: features.post_ids[features.liked_posts.astype(np.int64)],
        }
    )


def train_random(names: list[str], seed: int) -> catboost.CatBoost:
    """A model with the production trees and depth, trained on random rows of ``names``."""
    params = TrainParams()
    rng = np.random.default_rng(seed)
    matrix = (rng.random((50_000, len(names))) * 50).astype(np.float32)
    labels = (matrix[:, 0] + matrix[:, 12] + matrix[:, -1] + rng.random(50_000) * 40 > 95).astype(int)
    model = catboost.CatBoostClassifier(
        iterations=params.iterations, depth=params.depth, random_seed=seed, verbose=False, allow_writing_files=False
    )
    return model.fit(catboost.Pool(matrix, labels, feature_names=names))


def models_to_time(model_dir: Path | None) -> tuple[dict[str, catboost.CatBoost], str]:
    """The models timed: a saved control model (with the collaborative features), or two trained here; and the
    collaborative one at test's tree count."""
    if model_dir is not None:
        models = {COLLAB: load_artifact(model_dir).models[CONTROL]}
        origin = f"artifact {model_dir}"
    else:
        base, collab = list(FEATURE_NAMES), [*FEATURE_NAMES, *COLLAB_NAMES]
        models = {"base only": train_random(base, 0), COLLAB: train_random(collab, 0)}
        origin = f"trained here on random rows ({TrainParams().iterations} trees, depth {TrainParams().depth})"
    correction = models[COLLAB].copy()
    correction.shrink(ntree_end=min(TrainParams().correction_iterations, correction.tree_count_))
    models[TEST_TREES] = catboost.sum_models([models[COLLAB], correction])
    return models, origin


def time_pipeline(model: catboost.CatBoost, inputs: ModelInputs, k: int) -> tuple[float, float]:
    """(pairs per wall second, pairs per CPU second of this process)."""
    features = inputs.features
    started, cpu = time.perf_counter(), time.process_time()
    score_users(model, inputs, features.user_ids, k)
    pairs = features.user_ids.size * features.post_ids.size
    return pairs / (time.perf_counter() - started), pairs / (time.process_time() - cpu)


def time_catboost(model: catboost.CatBoost, matrix: np.ndarray, repeats: int) -> tuple[float, float]:
    """(rows per wall second, rows per CPU second) of CatBoost's predict alone."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        predict_raw(model, matrix)
    rows = matrix.shape[0] * repeats
    return rows / (time.perf_counter() - started), rows / (time.process_time() - cpu)


def fit_timed(features: FeatureSet) -> tuple[CollabModel, float]:
    """The collaborative features' post side fitted on the feature set's likes, and the seconds it took."""
    started = time.perf_counter()
    collab = fit_collab(features, like_rows(features, seed=2), CollabParams())
    return collab, time.perf_counter() - started


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
    features = random_features(n_users, scale.posts, liked_per_user=50, viewed_per_user=375, seed=1)
    collab, fit_seconds = fit_timed(features)
    models, origin = models_to_time(args.model)
    print(f"model: {origin}; scale={args.scale} users={n_users} posts={scale.posts}")
    print(f"collab fit (kNN, EASE, ALS on {n_users} users' likes): {fit_seconds:.1f} s")
    block = np.arange(min(block_users(scale.posts, BLOCK_ROWS), n_users))
    rates: dict[str, float] = {}
    for name, model in models.items():
        inputs = ModelInputs(features, None, collab if name != "base only" else None)
        matrix = inputs.block_matrix(block, moment_features_at(features))
        repeats = max(1, n_users // block.size)
        pipeline, own = [], []
        for _ in range(args.runs):
            pipeline.append(time_pipeline(model, inputs, args.k))
            own.append(time_catboost(model, matrix, repeats))
        print(f"-- {name} ({len(inputs.names)} features, {model.tree_count_} trees)")
        rates[name] = report(pipeline, own)
    minutes = FULL_PAIRS * (CONTROL_SHARE / rates[COLLAB] + (1 - CONTROL_SHARE) / rates[TEST_TREES]) / 60
    print(f"full scale, half the users on each model: {minutes:.1f} min (budget <= 10)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (budget <= 4096)")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} (2 cores)")


def _median(values: list[tuple[float, float]], index: int) -> float:
    return statistics.median(value[index] for value in values)


def report(pipeline: list[tuple[float, float]], own: list[tuple[float, float]]) -> float:
    """Print the figures of one model; return its median pairs per wall second."""
    pairs_s, rows_s = _median(pipeline, 0), _median(own, 0)
    runs = ", ".join(f"{wall / 1e6:.2f}" for wall, _ in pipeline)
    own_runs = ", ".join(f"{wall / 1e6:.2f}" for wall, _ in own)
    print(f"exhaustive scoring: {pairs_s / 1e6:.2f} M pairs/s (runs: {runs})")
    print(f"catboost predict, same matrix: {rows_s / 1e6:.2f} M rows/s (runs: {own_runs})")
    print(f"ratio: {pairs_s / rows_s:.2f} (budget >= 0.70)")
    print(f"full scale 163,205 x 7,023 pairs: {FULL_PAIRS / pairs_s / 60:.1f} min (budget <= 10)")
    # On a shared machine wall time counts other processes' load; CPU time per pair does not.
    cpu_pairs, cpu_rows = _median(pipeline, 1), _median(own, 1)
    print(
        f"per CPU second: scoring {cpu_pairs / 1e6:.2f} M pairs, catboost {cpu_rows / 1e6:.2f} M rows, "
        f"ratio {cpu_pairs / cpu_rows:.2f}; full scale on 2 dedicated cores: {FULL_PAIRS / cpu_pairs / 2 / 60:.1f} min"
    )
    return pairs_s


if __name__ == "__main__":
    main()
