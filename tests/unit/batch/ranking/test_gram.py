"""The blockwise co-like matrix and EASE's in-place solve against the plain numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import batch.ranking.recommenders.gram as gram_module
from batch.ranking.recommenders.ease import ease_weights, symmetric_inverse_lower
from batch.ranking.recommenders.gram import dense_gram, weighted_gram


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


def test_weighted_gram_sums_the_weighted_matrix_over_user_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    views = random_likes(300, 600, seed=6)
    likes = views.multiply(random_likes(300, 600, seed=7) + views).tocsr()  # some of the viewed posts
    likes.data[:] = 1.0
    monkeypatch.setattr(gram_module, "GRAM_USERS", 70)  # five blocks, the last one partial
    mixed = (likes + 0.25 * views).toarray().astype(np.float64)

    gram = weighted_gram(csr_of(likes), csr_of(views), 0.25, 600)

    np.testing.assert_allclose(gram, mixed.T @ mixed, atol=1e-9)


def csr_of(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    matrix = matrix.tocsr()
    matrix.sort_indices()
    return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32)


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
