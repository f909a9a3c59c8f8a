"""Step tune: every seen-aware baseline's grid scored on the label window, fitted on what came before it.

The benchmark chooses each baseline's parameters on the validation window; on its own that window holds a few
hundred users where users are active a few days each, and the choice is noisy (bench/RESULTS.md, stop 40: EASE's
λ 50 chosen where λ 1,000 was 0.10 better on the hold-out). The label window precedes it and holds more users, so
the benchmark pools the two. It runs before training, while the training cutoff's base set is still alive.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import polars as pl

from batch.pipeline.benchmark import interactions_at, sampled
from batch.pipeline.collab_features import CollabParams
from batch.pipeline.cutoffs import Windows
from batch.pipeline.features import FeatureSet
from batch.pipeline.options import TrainParams
from batch.pipeline.steps import step
from batch.ranking.recommenders.registry import EASE_NAME, RECOMMENDERS
from batch.ranking.recommenders.tuning import GridHits, choose, grid_hits, window_target
from common.columns import Col

log = logging.getLogger(__name__)


def tune_on_label_window(
    training: FeatureSet, likes: pl.DataFrame, windows: Windows, params: TrainParams
) -> dict[str, GridHits]:
    """Every baseline's grid fitted on the interactions before the label window and scored on its fresh likes.

    Args:
        training: The training cutoff's base feature set (its cutoff is the label window's start).
        likes: Every like row before as_of (timestamp, user_id, post_id).
        windows: The build's windows.
        params: Settings (``max_eval_users``, ``seed``).
    """
    with step("tune") as done:
        interactions = interactions_at(training, likes)
        in_window = pl.col(Col.TIMESTAMP).is_between(windows.label_start, windows.valid_start, closed="left")
        target = sampled(window_target(interactions, likes.filter(in_window)), params.max_eval_users, params.seed)
        log.info("tune: %d users with a fresh like in the label window", target.user_positions.size)
        grids = {
            name: grid_hits(name, interactions, target, params.seed, window="label window") for name in RECOMMENDERS
        }
        done.rows = int(target.user_positions.size)
    return grids


def models_collab_params(label_grids: Mapping[str, GridHits], seed: int) -> CollabParams:
    """The collaborative features' settings, with EASE's λ the label window's best (the default without a grid).

    A fixed λ suits some feeds and not others: at 1,000 instead of 300 the models gained on every world whose
    taste is in the co-likes and lost on the one where it is in the texts (bench/RESULTS.md, stop 40). The label
    window holds the training rows' users, so its best λ is the one whose scores rank their next likes best. The
    models' EASE column reads likes only, so only the grid's likes-only points are weighed: a point with views has
    a Gram matrix of another scale, and its λ another meaning.
    """
    grid = label_grids.get(EASE_NAME)
    if grid is None:
        return CollabParams(seed=seed)
    likes_only = grid.where(lambda params: not params.get("view_weight", 0.0))
    regularization = float(choose(likes_only).params["regularization"])
    log.info("collab features: EASE λ %g, the label window's best", regularization)
    return CollabParams(seed=seed, ease_regularization=regularization)
