"""EASE (Steck, 2019): a closed-form item-item linear model on the like matrix.

``P = (XᵀX + λI)⁻¹``, ``B = -P / diag(P)`` column by column, with a zero diagonal so a post never explains itself.
For 7,023 posts B is 197 MB of float32 and one solve takes seconds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.linalg import lapack

from batch.ranking.positions import IndexArray
from batch.ranking.recommenders.gram import column_slices, dense_gram, weighted_gram
from batch.ranking.recommenders.interactions import Interactions
from batch.ranking.recommenders.recommender import ScoreMatrix, popular_for_cold


class EASE:
    """Scores = the user's like row (plus ``view_weight`` x their view row) x B.

    With a view weight, B is fitted on everyone's likes plus their views at that weight: a feed shows each user
    about ten posts per like, and shows them what their interests lean to, so views carry much of a user's taste
    where their likes are few (on the fleeting world's per-user hold-out, 0.2 took EASE from 0.593 to 0.636).
    """

    def __init__(self, regularization: float, view_weight: float = 0.0) -> None:
        """Args: regularization: λ, added to the diagonal of the Gram matrix. view_weight: A view's weight beside a
        like's 1 (0 = likes only).

        Raises:
            ValueError: regularization is not positive or view_weight is negative.
        """
        if regularization <= 0 or view_weight < 0:
            raise ValueError(
                f"EASE needs regularization > 0 and view_weight >= 0, got {regularization} and {view_weight}"
            )
        self.regularization, self.view_weight = regularization, view_weight
        self._interactions: Interactions | None = None
        self._weights = np.zeros((0, 0), dtype=np.float32)
        self._likes = sp.csr_matrix((0, 0), dtype=np.float32)
        self._popularity = np.zeros(0, dtype=np.float32)

    def fit(self, interactions: Interactions) -> None:
        """Solve for B."""
        self._likes = interactions.like_matrix()
        self._interactions = interactions
        if self.view_weight:
            gram = weighted_gram(interactions.liked, interactions.viewed, self.view_weight, interactions.shape[1])
            self._weights = ease_from_gram(gram, self.regularization)
        else:
            self._weights = ease_weights(self._likes, self.regularization)
        self._popularity = np.asarray(self._likes.sum(axis=0), dtype=np.float32).ravel()

    def score_block(self, user_positions: IndexArray) -> ScoreMatrix:
        """Profile rows x B; users with an empty profile get popularity.

        Raises:
            RuntimeError: Not fitted.
        """
        if self._interactions is None:
            raise RuntimeError("EASE.score_block before fit")
        likes = self._likes[user_positions]
        profiles = likes
        if self.view_weight:
            profiles = likes + np.float32(self.view_weight) * self._interactions.view_rows(user_positions)
        scores = np.asarray(profiles @ self._weights, dtype=np.float32)
        return popular_for_cold(scores, np.diff(profiles.indptr) == 0, self._popularity)


def ease_weights(likes: sp.csr_matrix, regularization: float) -> ScoreMatrix:
    """B of EASE for a users x posts matrix, as float32.

    ``P`` is solved in float64 (as ``np.linalg.inv`` did) by Cholesky, in place on the one float64 posts x posts
    array, and B is written into a float32 array a slice of rows at a time: at 7,023 posts the
    solve holds 394 + 197 MB. ``np.linalg.inv`` held the float32 Gram matrix, its float64 copy, LAPACK's copy, an
    identity and the float64 result at once (about 1.8 GB).

    Raises:
        ValueError: The regularized Gram matrix is not positive definite (only for a non-positive λ).
    """
    return ease_from_gram(dense_gram(likes, np.float64), regularization)


def ease_from_gram(gram: npt.NDArray[np.float64], regularization: float) -> ScoreMatrix:
    """B of EASE from a posts x posts float64 Gram matrix, which is overwritten (see :func:`ease_weights`).

    Raises:
        ValueError: The regularized Gram matrix is not positive definite (only for a non-positive λ).
    """
    gram[np.diag_indices_from(gram)] += regularization
    inverse = symmetric_inverse_lower(gram)
    diagonal = np.diag(inverse).copy()
    weights = np.empty(inverse.shape, dtype=np.float32)
    for rows in column_slices(inverse.shape[0]):
        weights[rows] = full_rows(inverse, rows) / -diagonal[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def symmetric_inverse_lower(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The inverse of a symmetric positive definite C-ordered matrix, computed in place: on return only its lower
    triangle (diagonal included) holds the inverse; what lies above it is left over.

    LAPACK reads Fortran order. A symmetric matrix's transpose is the same matrix and is Fortran-ordered, so it is
    handed over without a copy; the upper triangle LAPACK fills in that view is the lower one in ours.
    """
    fortran = matrix.T
    factor, info = lapack.dpotrf(fortran, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ValueError(f"EASE: the regularized Gram matrix is not positive definite (LAPACK potrf info={info})")
    inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: the Gram matrix could not be inverted (LAPACK potri info={info})")
    if not np.shares_memory(inverse, matrix):  # LAPACK copied after all: keep the caller's contract
        matrix[...] = inverse.T
    return matrix


def full_rows(lower: npt.NDArray[np.float64], rows: slice) -> npt.NDArray[np.float64]:
    """Rows of the symmetric matrix whose lower triangle ``lower`` holds (the rest comes from the transpose)."""
    block = lower[rows].copy()
    row_index = np.arange(rows.start, rows.stop)[:, None]
    above = np.arange(lower.shape[1])[None, :] > row_index
    block[above] = lower[:, rows].T[above]
    return block
