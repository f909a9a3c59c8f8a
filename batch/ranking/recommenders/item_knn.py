"""Item-kNN: a post scores by its cosine similarity, on co-likes, to the posts the user liked (and viewed)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from batch.ranking.positions import IndexArray
from batch.ranking.recommenders.gram import column_slices, dense_gram
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import ScoreMatrix, popular_for_cold


class ItemKNN:
    """Cosine similarity of posts' like columns, each post keeping its ``neighbours`` most similar posts.

    A user's profile is their likes plus ``view_weight`` times their views, so users who view but rarely like
    still get neighbours of what they looked at.
    """

    def __init__(self, neighbours: int, view_weight: float = 0.0) -> None:
        """Args: neighbours: Similar posts kept per post. view_weight: Weight of a view in the profile (0 = likes
        only).

        Raises:
            ValueError: neighbours is below 1 or view_weight is negative.
        """
        if neighbours < 1 or view_weight < 0:
            raise ValueError(f"need neighbours >= 1 and view_weight >= 0, got {neighbours} and {view_weight}")
        self.neighbours, self.view_weight = neighbours, view_weight
        self._similar = sp.csr_matrix((0, 0), dtype=np.float32)
        self._interactions: Interactions | None = None
        self._popularity = np.zeros(0, dtype=np.float32)

    def fit(self, interactions: Interactions) -> None:
        """Compute the pruned similarity matrix; profiles are built per block of users when scoring."""
        likes = interactions.like_matrix()
        self._similar = pruned_cosine(likes, self.neighbours)
        self._interactions = interactions
        self._popularity = np.asarray(likes.sum(axis=0), dtype=np.float32).ravel()

    def score_block(self, user_positions: IndexArray) -> ScoreMatrix:
        """Profile x similarity for the block's users; users with an empty profile get popularity.

        Raises:
            RuntimeError: Not fitted.
        """
        if self._interactions is None:
            raise RuntimeError("ItemKNN.score_block before fit")
        profiles = self._interactions.like_rows(user_positions)
        if self.view_weight:
            profiles = profiles + self.view_weight * self._interactions.view_rows(user_positions)
        scores = np.asarray((profiles @ self._similar).todense(), dtype=np.float32)
        cold = np.diff(profiles.indptr) == 0
        return popular_for_cold(scores, cold, self._popularity)


def pruned_cosine(likes: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """Posts x posts cosine similarity of like columns, zero diagonal, keeping each column's top ``neighbours``.

    Column j holds the posts most similar to j, so ``profile @ similar`` sums, for post j, the similarities of the
    user's posts that count j among their neighbours' targets.
    """
    co = dense_gram(likes, np.float32)
    norms = np.sqrt(np.diag(co)).astype(np.float32)
    norms[norms == 0] = 1.0
    co /= norms[:, None]
    co /= norms[None, :]
    np.fill_diagonal(co, 0.0)
    posts = co.shape[0]
    keep = min(neighbours, max(posts - 1, 1))
    parts = [_column_top(co, columns, keep) for columns in column_slices(posts)]
    rows = np.concatenate([part[0] for part in parts]) if parts else np.zeros(0, dtype=np.int64)
    cols = np.concatenate([part[1] for part in parts]) if parts else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((co[rows, cols], (rows, cols)), shape=co.shape, dtype=np.float32)


def _column_top(co: npt.NDArray[np.float32], columns: slice, keep: int) -> tuple[IndexArray, IndexArray]:
    """(row, column) of the ``keep`` largest entries of each column in a slice (a slice at a time, so the index
    array stays ``keep`` x slice instead of posts x posts int64: 394 MB at full scale)."""
    rows = np.argpartition(-co[:, columns], keep - 1, axis=0)[:keep]
    cols = np.broadcast_to(np.arange(columns.start, columns.stop), rows.shape)
    return rows.ravel().astype(np.int64), cols.ravel().astype(np.int64)
