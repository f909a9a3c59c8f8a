"""Choosing each recommender's parameters on a validation window: hitrate@5 with what was seen left out.

Every grid point is fitted on the interactions before the window's start and scored on the users with a fresh
like inside it (a like of a post they had not liked before), exactly as the evaluation counts a hit. The choice
may pool several windows' users (:func:`choose`): the build scores each grid on its label window too, fitted before
that, so that a point is chosen on a few thousand users rather than a few hundred.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
        tried: Hitrate of every grid point, in grid order, over every window it was chosen on.
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


@dataclass(frozen=True, slots=True)
class GridHits:
    """Every grid point of one recommender scored on one window.

    Attributes:
        name: The registry name.
        points: The grid points, in grid order.
        per_user: Each point's hit (1.0) or miss per target user of the window.
    """

    name: str
    points: tuple[Params, ...]
    per_user: tuple[FloatArray, ...]

    @property
    def users(self) -> int:
        """Target users of the window."""
        return int(self.per_user[0].size) if self.per_user else 0

    def where(self, keep: Callable[[Params], bool]) -> GridHits:
        """The same window's figures for the points ``keep`` accepts, in grid order."""
        kept = [index for index, params in enumerate(self.points) if keep(params)]
        return GridHits(self.name, tuple(self.points[i] for i in kept), tuple(self.per_user[i] for i in kept))


def grid_hits(
    name: str,
    interactions: Interactions,
    target: Target,
    seed: int,
    grid: tuple[Params, ...] | None = None,
    window: str = "window",
) -> GridHits:
    """Each grid point of ``name`` fitted on ``interactions`` and scored on ``target``.

    Args:
        name: The registry name.
        interactions: What is fitted on (before the window).
        target: The window's users and fresh likes.
        seed: Seeds every fit.
        grid: The points tried; None = the registry's grid.
        window: The window's name, for the log.

    Raises:
        KeyError: ``name`` is not in the registry.
    """
    spec = RECOMMENDERS[name]
    points = grid or spec.grid
    per_point: list[FloatArray] = []
    for params in points:
        recommender = spec.make(params, seed)
        recommender.fit(interactions)
        per_point.append(hits(recommender, interactions, target))
        del recommender  # the next point is fitted without this one's weights alive (EASE's: 197 MB at full scale)
        log.info("tuning %s %s on the %s: hitrate@%d=%.4f", name, dict(params), window, HIT_K, _mean(per_point[-1]))
    return GridHits(name, tuple(points), tuple(per_point))


def choose(window: GridHits, *others: GridHits) -> Tuned:
    """The grid point with the best hitrate@5 over the users of ``window`` and of ``others`` pooled (the same
    recommender's grid on earlier windows; a tie keeps the earlier point); its figures are ``window``'s.

    Chosen on one window of a few hundred users, the point is noisy: on a per-user hold-out of the fleeting world,
    300 users chose EASE's λ 50 (0.496 there) where λ 1,000 reached 0.593 (bench/RESULTS.md, stop 40).

    Raises:
        ValueError: A grid of ``others`` is not ``window``'s.
    """
    for other in others:
        if other.name != window.name or other.points != window.points:
            raise ValueError(f"cannot pool the grid of {other.name} with that of {window.name}: they differ")
    grids = (window, *others)
    pooled = [_pooled_mean([grid.per_user[i] for grid in grids]) for i in range(len(window.points))]
    best = max(range(len(pooled)), key=lambda i: (pooled[i], -i))
    tried = list(zip(window.points, pooled, strict=True))
    return Tuned(window.name, window.points[best], _mean(window.per_user[best]), window.per_user[best], tried)


def tune(
    name: str, interactions: Interactions, target: Target, seed: int, grid: tuple[Params, ...] | None = None
) -> Tuned:
    """The grid point of ``name`` with the best hitrate@5 on ``target`` alone (a tie keeps the earlier point)."""
    return choose(grid_hits(name, interactions, target, seed, grid))


def fitted(tuned: Tuned, interactions: Interactions, seed: int) -> Recommender:
    """The tuned recommender refitted on ``interactions`` (e.g. everything before as_of)."""
    recommender = RECOMMENDERS[tuned.name].make(tuned.params, seed)
    recommender.fit(interactions)
    return recommender


def _mean(values: FloatArray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _pooled_mean(parts: list[FloatArray]) -> float:
    users = sum(part.size for part in parts)
    return float(sum(part.sum() for part in parts) / users) if users else float("nan")
