"""EASE (Steck, 2019): a closed-form item-item linear model on the like matrix.

``P = (XᵀX + λI)⁻¹``, ``B = -P / diag(P)`` column by column, with a zero diagonal so a post never explains itself.
For 7,023 posts B is 197 MB of float32 and one inversion takes seconds.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from batch.ranking.positions import IndexArray
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import ScoreMatrix, popular_for_cold


class EASE:
    """Scores = the user's like row x B."""

    def __init__(self, regularization: float) -> None:
        """Args: regularization: λ, added to the diagonal of the Gram matrix.

        Raises:
            ValueError: regularization is not positive.
        """
        if regularization <= 0:
            raise ValueError(f"EASE regularization must be positive, got {regularization}")
        self.regularization = regularization
        self._weights = np.zeros((0, 0), dtype=np.float32)
        self._likes = sp.csr_matrix((0, 0), dtype=np.float32)
        self._popularity = np.zeros(0, dtype=np.float32)

    def fit(self, interactions: Interactions) -> None:
        """Solve for B."""
        self._likes = interactions.like_matrix()
        self._weights = ease_weights(self._likes, self.regularization)
        self._popularity = np.asarray(self._likes.sum(axis=0), dtype=np.float32).ravel()

    def score_block(self, user_positions: IndexArray) -> ScoreMatrix:
        """Like rows x B; users without likes get popularity."""
        likes = self._likes[user_positions]
        scores = np.asarray(likes @ self._weights, dtype=np.float32)
        return popular_for_cold(scores, np.diff(likes.indptr) == 0, self._popularity)


def ease_weights(likes: sp.csr_matrix, regularization: float) -> ScoreMatrix:
    """B of EASE for a users x posts matrix, float32, computed in place on one posts x posts array."""
    gram = np.asarray((likes.T @ likes).todense(), dtype=np.float32)
    gram[np.diag_indices_from(gram)] += np.float32(regularization)
    inverse = np.linalg.inv(gram)
    del gram
    inverse /= -np.diag(inverse)[None, :]
    np.fill_diagonal(inverse, 0.0)
    weights: ScoreMatrix = inverse
    return weights
