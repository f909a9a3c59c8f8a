"""Step benchmark: the trained models against the tuned seen-aware baselines on the validation window.

Every baseline of the registry is scored on the window at each point of its grid (fitted on what happened before
its start) and every model ranks the same users; each user's hit or miss is kept, so a model and a baseline are
compared pair by pair (a bootstrap over users of their per-user difference), not as two independent means. A
baseline's point is the best over this window's users and the label window's (``pipeline/label_tuning.py``)
pooled, and its figures are this window's at that point: chosen partly on the very window, which flatters the
baselines a little, so a guard built on it errs on the side of refusing.
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
from batch.ranking.recommenders.tuning import HIT_K, GridHits, Target, Tuned, choose, grid_hits, window_target

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
    label_grids: Mapping[str, GridHits] | None = None,
) -> Benchmark:
    """Step benchmark: tune every baseline on the validation window (pooled with ``label_grids``, each baseline's
    grid scored on the label window) and compare each model with the best one."""
    with step("benchmark") as done:
        interactions = interactions_at(sets.base[Cutoff.VALID], source.likes)
        target = sampled(window_target(interactions, window_likes), params.max_eval_users, params.seed)
        earlier = label_grids or {}
        baselines = {
            name: tuned_baseline(name, interactions, target, params.seed, earlier.get(name)) for name in RECOMMENDERS
        }
        hits = {name: model_hits(model, sets, name, interactions, target, params) for name, model in models.items()}
        users = int(target.user_positions.size)
        label_users = max((grid.users for grid in earlier.values()), default=0)
        benchmark = Benchmark(users, baselines, hits, compare(hits, baselines, params.seed), label_users)
        log.info("benchmark: baselines tuned on %d users (%d of the label window)", benchmark.tuning_users, label_users)
        for item in benchmark.comparisons:
            log.info("benchmark: %s", item.describe())
        done.rows = benchmark.users
    return benchmark


def tuned_baseline(name: str, interactions: Interactions, target: Target, seed: int, earlier: GridHits | None) -> Tuned:
    """A baseline's grid scored on the validation window, its point chosen with ``earlier`` (the same grid on the
    label window) pooled in."""
    here = grid_hits(name, interactions, target, seed, window="validation window")
    return choose(here) if earlier is None else choose(here, earlier)


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
