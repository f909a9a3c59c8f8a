"""Step benchmark: the trained models against the tuned seen-aware baselines on the validation window.

Every baseline of the registry is tuned on the window (fitted on what happened before its start) and every model
ranks the same users; each user's hit or miss is kept, so a model and a baseline are compared pair by pair (a
bootstrap over users of their per-user difference), not as two independent means. The baselines' figures are
those of their best grid point on this very window, which flatters them a little: a guard built on it errs on
the side of refusing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import catboost
import numpy as np
import numpy.typing as npt
import polars as pl

from batch.pipeline.comparison import Benchmark, compare
from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.feature_sets import FeatureSets
from batch.pipeline.features import FeatureSet
from batch.pipeline.options import TrainParams
from batch.pipeline.score import score_users
from batch.pipeline.source import Source
from batch.pipeline.steps import step
from batch.ranking.positions import csr_contains
from batch.ranking.recommenders.interactions import Interactions, build_interactions
from batch.ranking.recommenders.registry import RECOMMENDERS
from batch.ranking.recommenders.tuning import HIT_K, Target, tune, window_target

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]


def interactions_at(features: FeatureSet, likes: pl.DataFrame) -> Interactions:
    """The interactions before a feature set's cutoff, from its viewed CSR (no second scan of the feed).

    Args:
        features: A feature set (its ids, cutoff and viewed CSR are used).
        likes: Like rows (timestamp, user_id, post_id); those at or after the cutoff are left out.
    """
    viewed = (features.viewed_indptr, features.viewed_posts)
    return build_interactions(features.user_ids, features.post_ids, viewed, likes, features.cutoff)


def benchmark_models(
    models: Mapping[str, catboost.CatBoost],
    sets: FeatureSets,
    source: Source,
    window_likes: pl.DataFrame,
    params: TrainParams,
) -> Benchmark:
    """Step benchmark: tune every baseline on the validation window and compare each model with the best one."""
    with step("benchmark") as done:
        interactions = interactions_at(sets.base[Cutoff.VALID], source.likes)
        target = sampled(window_target(interactions, window_likes), params.max_eval_users, params.seed)
        baselines = {name: tune(name, interactions, target, params.seed) for name in RECOMMENDERS}
        hits = {name: model_hits(model, sets, name, interactions, target, params) for name, model in models.items()}
        benchmark = Benchmark(int(target.user_positions.size), baselines, hits, compare(hits, baselines, params.seed))
        for item in benchmark.comparisons:
            log.info("benchmark: %s", item.describe())
        done.rows = benchmark.users
    return benchmark


def sampled(target: Target, limit: int, seed: int) -> Target:
    """At most ``limit`` of the target's users, drawn with ``seed`` (ranking them all costs as much as scoring)."""
    if target.user_positions.size <= limit:
        return target
    chosen = np.random.default_rng(seed).choice(target.user_positions, size=limit, replace=False)
    return Target(np.sort(chosen), target.relevant)


def model_hits(
    model: catboost.CatBoost,
    sets: FeatureSets,
    name: str,
    interactions: Interactions,
    target: Target,
    params: TrainParams,
) -> FloatArray:
    """The model's hit (1.0) or miss per target user: its top 5 as served (liked posts left out)."""
    user_ids = interactions.user_ids[target.user_positions]
    top = score_users(model, sets.inputs(Cutoff.VALID, name), user_ids, HIT_K, threads=params.threads)
    known = top.post_ids >= 0
    columns = np.searchsorted(interactions.post_ids, np.where(known, top.post_ids, 0)).astype(np.int64)
    rows = np.repeat(target.user_positions, top.post_ids.shape[1])
    liked = csr_contains(*target.relevant, interactions.shape[1], rows, columns.ravel()) & known.ravel()
    return np.asarray(liked.reshape(top.post_ids.shape).any(axis=1), dtype=np.float64)
