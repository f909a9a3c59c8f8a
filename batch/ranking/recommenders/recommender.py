"""The one shape every recommender has, and how its scores become lists: scores -> seen posts out -> top k.

A recommender is fitted once on :class:`Interactions` and then scores any block of its users as a dense float32
(block x posts) matrix, so a caller bounds memory by the block size it picks, whatever the number of users.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from batch.ranking.positions import IndexArray, csr_entries
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.topk import top_k

ScoreMatrix = npt.NDArray[np.float32]
BLOCK_USERS: Final = 2048
"""Users scored at once by default: 2,048 x 7,023 posts of float32 is 57 MB."""


class Recommender(Protocol):
    """Fitted on interactions before a cutoff, then asked for the scores of blocks of those users."""

    def fit(self, interactions: Interactions) -> None:
        """Learn from ``interactions``; score_block then scores its rows."""

    def score_block(self, user_positions: IndexArray) -> ScoreMatrix:
        """(len(user_positions) x posts) float32 scores, larger is better, of the fitted interactions' rows."""
        ...


def exclude_seen(scores: ScoreMatrix, interactions: Interactions, user_positions: IndexArray) -> ScoreMatrix:
    """Set -inf, in place, on every post the user viewed or liked before the cutoff; returns ``scores``.

    A post already viewed is rarely liked later (on real data as on ours), so recommending it wastes a slot.
    """
    for indptr, indices in (interactions.viewed, interactions.liked):
        owners, columns = csr_entries(indptr, indices, user_positions)
        scores[owners, columns.astype(np.int64)] = -np.inf
    return scores


def recommend_block(
    recommender: Recommender, interactions: Interactions, user_positions: IndexArray, k: int
) -> tuple[IndexArray, ScoreMatrix]:
    """Post positions (block x k) of each user's k best unseen posts, best first, and their scores.

    A score of -inf marks a slot with no unseen post left (the user saw nearly the whole catalog).
    """
    scores = exclude_seen(recommender.score_block(user_positions), interactions, user_positions)
    best = top_k(scores, k)
    return best, np.take_along_axis(scores, best, axis=1)


def user_blocks(user_positions: IndexArray, size: int = BLOCK_USERS) -> Iterator[IndexArray]:
    """Consecutive slices of ``user_positions`` of at most ``size`` users."""
    for start in range(0, user_positions.size, size):
        yield user_positions[start : start + size]


def popular_for_cold(scores: ScoreMatrix, cold: npt.NDArray[np.bool_], popularity: ScoreMatrix) -> ScoreMatrix:
    """Give users with no history (``cold`` rows) the popularity scores, in place: a personal model has nothing
    to say about them and would otherwise rank the catalog by position."""
    if cold.any():
        scores[cold] = popularity
    return scores
