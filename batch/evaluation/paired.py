"""Paired differences of hitrate@5: two recommenders compared user by user on the same hold-out.

Each recommender's own 95% interval is wide (about ±0.03 at 1,000 users), and two rows whose intervals overlap can
still differ clearly: the users a model hits and those a baseline hits are largely the same users. The paired
difference bootstraps each user's own hit difference, so its interval is much narrower than the two rows' side by
side, and it is the figure that says whether a model beats a baseline, or ``test`` beats ``control``, beyond the
noise of which users were held out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

from batch.ranking.metrics import bootstrap_interval, hit_matrix, hitrate_per_user
from common.ab import CONTROL, TEST

# The key of a model against the best seen-aware baseline, whichever that is in the hold-out at hand.
BEST_BASELINE: Final = "best baseline"
Difference = tuple[float, float, float]


def best_of(hitrates: Mapping[str, float], names: Iterable[str]) -> str | None:
    """The name among ``names`` with the highest hitrate (the first on a tie); None when none of them was run."""
    present = [name for name in names if name in hitrates]
    return max(present, key=lambda name: hitrates[name]) if present else None


def paired_difference(first: npt.NDArray[np.float64], second: npt.NDArray[np.float64], seed: int) -> Difference:
    """Mean of ``first - second`` per user and its 95% bootstrap interval."""
    difference = first - second
    low, high = bootstrap_interval(difference, seed=seed)
    return (float(difference.mean()), low, high)


def paired_differences(
    served: Mapping[str, npt.NDArray[np.int64]],
    relevant: list[set[int]],
    pairs: Iterable[tuple[str, str]],
    baselines: Iterable[str],
    seed: int,
) -> tuple[dict[str, Difference], str | None]:
    """Paired differences of hitrate@5 of the wanted pairs that were both run, then ``control`` and ``test``
    against the best of ``baselines`` (keyed ``"control - best baseline"``), and that baseline's name.

    Args:
        served: (users x k) post ids each recommender served, users in the order of ``relevant``.
        relevant: Each user's held-out liked posts.
        pairs: (first, second) names to compare, e.g. (``test``, ``control``).
        baselines: Names of the seen-aware baselines.
        seed: Seed of the bootstrap.
    """
    per_user = {name: hitrate_per_user(hit_matrix(top, relevant)) for name, top in served.items()}
    differences = {
        f"{first} - {second}": paired_difference(per_user[first], per_user[second], seed)
        for first, second in pairs
        if first in per_user and second in per_user
    }
    best = best_of({name: float(hits.mean()) for name, hits in per_user.items()}, baselines)
    if best is not None:
        for model in (CONTROL, TEST):
            if model in per_user:
                differences[f"{model} - {BEST_BASELINE}"] = paired_difference(per_user[model], per_user[best], seed)
    return differences, best
