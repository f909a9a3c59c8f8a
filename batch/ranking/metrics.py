"""Ranking metrics over users, the way the course checker counts a hit: any of the top 5 liked in the window.

Inputs are plain numpy arrays: ``recommended`` is (users x n) post ids (-1 pads a short list), ``relevant`` is the
per-user set of posts liked in the evaluation window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntMatrix = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def hit_matrix(recommended: IntMatrix, relevant: Sequence[set[int]]) -> npt.NDArray[np.bool_]:
    """Boolean (users x n): whether each recommended post was liked by that user in the window."""
    hits = np.zeros(recommended.shape, dtype=bool)
    for row, (posts, liked) in enumerate(zip(recommended, relevant, strict=True)):
        hits[row] = [int(post) in liked for post in posts]
    return hits


def hitrate_per_user(hits: npt.NDArray[np.bool_]) -> FloatArray:
    """1.0 for users with at least one hit in their list, else 0.0."""
    per_user: FloatArray = np.asarray(hits.any(axis=1), dtype=np.float64)
    return per_user


def precision_per_user(hits: npt.NDArray[np.bool_]) -> FloatArray:
    """Share of each user's recommended slots that were hits."""
    per_user: FloatArray = hits.mean(axis=1, dtype=np.float64)
    return per_user


def ndcg_per_user(hits: npt.NDArray[np.bool_], relevant_counts: npt.NDArray[np.int64]) -> FloatArray:
    """NDCG with binary relevance; the ideal list puts min(n, liked in window) hits first."""
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal_hits = np.minimum(relevant_counts, hits.shape[1])
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_hits]
    per_user: FloatArray = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
    return per_user


def bootstrap_interval(
    values: FloatArray, seed: int = 0, rounds: int = 1000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over users (resampled in slices to bound memory)."""
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    slice_rounds = max(1, 20_000_000 // values.size)
    means = np.concatenate(
        [
            values[rng.integers(0, values.size, size=(min(slice_rounds, rounds - done), values.size))].mean(axis=1)
            for done in range(0, rounds, slice_rounds)
        ]
    )
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


def catalog_coverage(recommended: IntMatrix, catalog_size: int) -> float:
    """Share of the catalog that appears in at least one user's recommendations."""
    shown = np.unique(recommended[recommended >= 0])
    return float(shown.size) / catalog_size if catalog_size else 0.0


def gap_closure(model: float, popular: float, oracle: float) -> float:
    """(model - popular) / (oracle - popular): 0 at the popularity baseline, 1 at the oracle."""
    span = oracle - popular
    return (model - popular) / span if span > 0 else float("nan")


def group_means(values: FloatArray, groups: Sequence[str]) -> dict[str, float]:
    """Mean of ``values`` within each group label, groups in sorted order."""
    labels = np.asarray(groups)
    return {str(name): float(values[labels == name].mean()) for name in sorted(set(groups))}
