"""The sequence model as a recommender of its own, in the shape of ``batch.ranking.recommenders``: fitted on the
interactions before a cutoff, it scores blocks of their users, so the same seen filter and top-k cut apply.

It is built from a trained model's vectors (:class:`SequenceVectors`): training needs the ordered feed, which the
interactions do not hold, and the build has already trained the model at that cutoff for the ``test`` model's
feature; fitting only lines its rows and columns up with the interactions'.
"""

from __future__ import annotations

import numpy as np

from batch.ranking.positions import IndexArray, positions_or_last
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import ScoreMatrix
from batch.ranking.sequence.vectors import FloatMatrix, SequenceVectors


class SequenceRecommender:
    """Scores of a trained sequence model for the users and posts of the interactions it is fitted on."""

    def __init__(self, vectors: SequenceVectors) -> None:
        """Args: the model's user and post vectors at the interactions' cutoff."""
        self._vectors = vectors
        self._users: FloatMatrix = np.zeros((0, vectors.user_vectors.shape[1]), dtype=np.float32)
        self._posts: FloatMatrix = np.zeros((0, vectors.post_vectors.shape[1]), dtype=np.float32)

    def fit(self, interactions: Interactions) -> None:
        """Line the vectors up with the interactions' rows and columns; a user or post the model has no vector
        for gets zeros (a user: scores by post bias alone; a post: score 0)."""
        self._users = _aligned(self._vectors.user_ids, self._vectors.user_vectors, interactions.user_ids)
        self._posts = _aligned(self._vectors.post_ids, self._vectors.post_vectors, interactions.post_ids)

    def score_block(self, user_positions: IndexArray) -> ScoreMatrix:
        """(block x posts) float32 scores of the fitted interactions' users at ``user_positions``."""
        scores: ScoreMatrix = self._users[user_positions] @ self._posts.T
        return scores


def _aligned(known_ids: np.ndarray, vectors: FloatMatrix, wanted_ids: np.ndarray) -> FloatMatrix:
    rows = np.zeros((wanted_ids.size, vectors.shape[1]), dtype=np.float32)
    positions, known = positions_or_last(known_ids, wanted_ids)
    rows[known] = vectors[positions[known]]
    return rows
