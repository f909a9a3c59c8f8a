"""Popularity by likes, and popularity with likes decayed by their age: every user gets the same scores."""

from __future__ import annotations

import numpy as np

from batch.ranking.positions import IndexArray
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import ScoreMatrix


class Popularity:
    """Posts by the number of likes before the cutoff."""

    def __init__(self) -> None:
        """A recommender with no parameters."""
        self._scores = np.zeros(0, dtype=np.float32)

    def fit(self, interactions: Interactions) -> None:
        """Count the likes of each post."""
        counts = np.bincount(interactions.like_posts, minlength=interactions.shape[1])
        self._scores = counts.astype(np.float32)

    def score_block(self, user_positions: IndexArray) -> ScoreMatrix:
        """The like counts, one row per user."""
        return np.broadcast_to(self._scores, (user_positions.size, self._scores.size)).copy()


class RecentPopularity(Popularity):
    """Posts by their likes, each weighted 0.5 ** (age / half_life): what is liked now, not what was once."""

    def __init__(self, half_life_days: float) -> None:
        """Args: half_life_days: Age at which a like counts half.

        Raises:
            ValueError: half_life_days is not positive.
        """
        super().__init__()
        if half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive, got {half_life_days}")
        self.half_life_days = half_life_days

    def fit(self, interactions: Interactions) -> None:
        """Sum the decayed weights of each post's likes."""
        weights = np.exp2(-interactions.like_age_days / self.half_life_days)
        decayed = np.bincount(interactions.like_posts, weights=weights, minlength=interactions.shape[1])
        self._scores = decayed.astype(np.float32)
