"""The evaluation's seen-aware baselines: each with the parameters the build tuned on its label and validation
windows (before T), refitted on everything before T, ranking the evaluated users' unseen posts."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from batch.pipeline.benchmark import interactions_at
from batch.pipeline.prepared import Prepared
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import Recommender, recommend_block, user_blocks
from batch.ranking.recommenders.registry import RECOMMENDERS, Params
from batch.ranking.topk import NO_POST

IntMatrix = npt.NDArray[np.int64]
SEEN_AWARE_NOTE: Final = (
    "Seen-aware baselines ({names}): they never recommend a post the user viewed or liked before T; each is tuned"
    " by hitrate@5 over the users of the build's label and validation windows pooled (before T) and refitted on"
    " everything before T. Parameters: "
)


def tuned_params(prepared: Prepared) -> dict[str, Params]:
    """Each registry recommender's parameters: the build's tuning, else the first point of its grid."""
    tuned = prepared.benchmark.baselines if prepared.benchmark is not None else {}
    return {name: tuned[name].params if name in tuned else spec.grid[0] for name, spec in RECOMMENDERS.items()}


def seen_aware_rankings(prepared: Prepared, user_ids: npt.NDArray[np.int64], k: int, seed: int) -> dict[str, IntMatrix]:
    """(users x k) post ids, :data:`NO_POST` padded, of every tuned seen-aware baseline for ``user_ids``."""
    interactions = interactions_at(prepared.score_features, prepared.source.likes)
    positions = interactions.user_positions(user_ids)
    rankings = {}
    for name, params in tuned_params(prepared).items():
        recommender = RECOMMENDERS[name].make(params, seed)
        recommender.fit(interactions)
        rankings[name] = ranked_post_ids(recommender, interactions, positions, k)
    return rankings


def ranked_post_ids(
    recommender: Recommender, interactions: Interactions, user_positions: npt.NDArray[np.int64], k: int
) -> IntMatrix:
    """Each user's k best unseen posts as post ids, block by block; :data:`NO_POST` where none is left."""
    k = min(k, interactions.shape[1])
    rows = []
    for block in user_blocks(user_positions):
        best, scores = recommend_block(recommender, interactions, block, k)
        rows.append(np.where(np.isfinite(scores), interactions.post_ids[best], NO_POST).astype(np.int64))
    return np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)


def params_note(prepared: Prepared) -> str:
    """The report's note on the seen-aware baselines and their parameters."""
    params = tuned_params(prepared)
    chosen = "; ".join(f"{name} {dict(point) or 'none'}" for name, point in params.items())
    return SEEN_AWARE_NOTE.format(names=", ".join(params)) + chosen + "."
