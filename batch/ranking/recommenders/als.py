"""Implicit ALS on the like matrix (Hu, Koren and Volinsky's confidence weighting), via the ``implicit`` package."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from batch.ranking.positions import IndexArray
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import ScoreMatrix, popular_for_cold


class ALS:
    """User and post factors whose dot product scores a post; a like has confidence 1 + alpha."""

    def __init__(self, factors: int, regularization: float, alpha: float, seed: int, iterations: int = 15) -> None:
        """Args: factors: Latent dimension. regularization: L2 weight. alpha: Confidence of a like. seed: Seeds
        the initial factors. iterations: ALS sweeps."""
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.seed, self.iterations = seed, iterations
        self._users = np.zeros((0, 0), dtype=np.float32)
        self._posts = np.zeros((0, 0), dtype=np.float32)
        self._cold = np.zeros(0, dtype=bool)
        self._popularity = np.zeros(0, dtype=np.float32)

    def fit(self, interactions: Interactions) -> None:
        """Fit the factors on the likes, on one thread: the same seed then gives the same factors, and on a shared
        machine implicit's thread pool (with a BLAS pool on top) was 20 times slower than one thread."""
        from implicit.cpu.als import AlternatingLeastSquares

        likes = interactions.like_matrix()
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=1,
            )
            model.fit(likes, show_progress=False)
        self._users = np.asarray(model.user_factors, dtype=np.float32)
        self._posts = np.asarray(model.item_factors, dtype=np.float32)
        self._cold = np.diff(likes.indptr) == 0
        self._popularity = np.asarray(likes.sum(axis=0), dtype=np.float32).ravel()

    def score_block(self, user_positions: IndexArray) -> ScoreMatrix:
        """User factors x post factors; users without likes get popularity."""
        scores: ScoreMatrix = self._users[user_positions] @ self._posts.T
        return popular_for_cold(scores, self._cold[user_positions], self._popularity)
