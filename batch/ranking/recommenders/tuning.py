"""Choosing each recommender's parameters on a validation window: hitrate@5 with what was seen left out.

Every grid point is fitted on the interactions before the window's start and scored on the users with a fresh
like inside it (a like of a post they had not liked before), exactly as the evaluation counts a hit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.ranking.positions import Csr, IndexArray, csr_contains, csr_entries, pairs_csr
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import Recommender, recommend_block, user_blocks
from batch.ranking.recommenders.registry import RECOMMENDERS, Params

log = logging.getLogger(__name__)
HIT_K: Final = 5
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Target:
    """Who is scored in a window and what counts as a hit.

    Attributes:
        user_positions: Rows (of the interactions) of the users with a fresh like in the window, sorted.
        relevant: CSR over all rows of the posts each user freshly liked in the window.
    """

    user_positions: IndexArray
    relevant: Csr


@dataclass(frozen=True, slots=True)
class Tuned:
    """A recommender's best grid point on a window.

    Attributes:
        name: The registry name.
        params: The chosen parameters.
        hitrate: Its hitrate@5 on the window.
        per_user: Its hit (1.0) or miss (0.0) per target user, for paired comparisons.
        tried: Hitrate of every grid point, in grid order.
    """

    name: str
    params: Params
    hitrate: float
    per_user: FloatArray
    tried: list[tuple[Params, float]] = field(default_factory=list)


def window_target(interactions: Interactions, window_likes: pl.DataFrame) -> Target:
    """The target of the likes in a window that follows ``interactions.cutoff`` (likes of posts the user had
    already liked before it do not count; unknown ids are dropped)."""
    users, posts = interactions.shape
    indptr, indices = pairs_csr(interactions.user_ids, interactions.post_ids, window_likes)
    owners, columns = csr_entries(indptr, indices, np.arange(users, dtype=np.int64))
    liked_before = csr_contains(*interactions.liked, posts, owners, columns.astype(np.int64))
    owners, columns = owners[~liked_before], columns[~liked_before]
    counts = np.bincount(owners, minlength=users)
    fresh_indptr = np.zeros(users + 1, dtype=np.int64)
    np.cumsum(counts, out=fresh_indptr[1:])
    return Target(np.flatnonzero(counts).astype(np.int64), (fresh_indptr, columns))


def hits(recommender: Recommender, interactions: Interactions, target: Target, k: int = HIT_K) -> FloatArray:
    """1.0 per target user with a freshly liked post among their k best unseen posts, else 0.0."""
    blocks = user_blocks(target.user_positions)
    per_user = [_block_hits(recommender, interactions, target, block, k) for block in blocks]
    return np.concatenate(per_user) if per_user else np.zeros(0, dtype=np.float64)


def _block_hits(
    recommender: Recommender, interactions: Interactions, target: Target, block: IndexArray, k: int
) -> FloatArray:
    best, scores = recommend_block(recommender, interactions, block, k)
    rows = np.repeat(block, best.shape[1])
    liked = csr_contains(*target.relevant, interactions.shape[1], rows, best.ravel())
    liked &= np.isfinite(scores.ravel())
    per_user: FloatArray = np.asarray(liked.reshape(best.shape).any(axis=1), dtype=np.float64)
    return per_user


def tune(
    name: str, interactions: Interactions, target: Target, seed: int, grid: tuple[Params, ...] | None = None
) -> Tuned:
    """The grid point of ``name`` with the best hitrate@5 on ``target`` (a tie keeps the earlier point).

    Args:
        name: The registry name.
        interactions: What is fitted on (before the window).
        target: The window's users and fresh likes.
        seed: Seeds every fit.
        grid: The points tried; None = the registry's grid.

    Raises:
        KeyError: ``name`` is not in the registry.
    """
    spec = RECOMMENDERS[name]
    tried: list[tuple[Params, float, FloatArray]] = []
    for params in grid or spec.grid:
        recommender = spec.make(params, seed)
        recommender.fit(interactions)
        per_user = hits(recommender, interactions, target)
        del recommender  # the next point is fitted without this one's weights alive (EASE's: 197 MB at full scale)
        tried.append((params, _mean(per_user), per_user))
        log.info("tuning %s %s: hitrate@%d=%.4f", name, dict(params), HIT_K, tried[-1][1])
    best = max(range(len(tried)), key=lambda i: (tried[i][1], -i))
    params, hitrate, per_user = tried[best]
    return Tuned(name, params, hitrate, per_user, [(point, rate) for point, rate, _ in tried])


def fitted(tuned: Tuned, interactions: Interactions, seed: int) -> Recommender:
    """The tuned recommender refitted on ``interactions`` (e.g. everything before as_of)."""
    recommender = RECOMMENDERS[tuned.name].make(tuned.params, seed)
    recommender.fit(interactions)
    return recommender


def _mean(values: FloatArray) -> float:
    return float(values.mean()) if values.size else float("nan")
