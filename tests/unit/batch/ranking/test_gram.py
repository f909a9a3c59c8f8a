"""The blockwise co-like matrix and EASE's in-place solve against the plain numpy formulas."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from batch.ranking.recommenders.ease import ease_weights, symmetric_inverse_lower
from batch.ranking.recommenders.gram import dense_gram


def random_likes(users: int, posts: int, seed: int = 5) -> sp.csr_matrix:
    matrix = sp.random(users, posts, density=0.03, random_state=seed, format="csr", dtype=np.float32)
    matrix.data[:] = 1.0
    return matrix


def test_dense_gram_equals_the_one_shot_product_across_column_slices() -> None:
    likes = random_likes(400, 1100)  # three slices of 512 columns, the last one partial
    expected = (likes.T @ likes).toarray()
    for dtype in (np.float32, np.float64):
        gram = dense_gram(likes, dtype)
        assert gram.dtype == dtype and gram.flags.c_contiguous
        np.testing.assert_array_equal(gram, expected)


def test_ease_weights_match_numpy_inverse_on_a_catalog_wider_than_a_slice() -> None:
    likes = random_likes(2000, 700)
    gram = (likes.T @ likes).toarray().astype(np.float64) + 30.0 * np.eye(700)
    inverse = np.linalg.inv(gram)
    expected = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(expected, 0.0)
    weights = ease_weights(likes, 30.0)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, expected, atol=1e-7)


def test_symmetric_inverse_lower_works_in_the_callers_array() -> None:
    rng = np.random.default_rng(2)
    factor = rng.normal(size=(60, 60))
    matrix = factor @ factor.T + 60.0 * np.eye(60)
    expected = np.linalg.inv(matrix)
    result = symmetric_inverse_lower(matrix)
    assert result is matrix
    np.testing.assert_allclose(np.tril(result), np.tril(expected), atol=1e-12)
