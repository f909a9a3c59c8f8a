"""The posts x posts co-like matrix ``XᵀX`` of a users x posts like matrix, dense, built a slice of columns at a time.

Item-kNN and EASE both start from it. The one-shot sparse product ``X.T @ X`` holds its whole result as a sparse
matrix (at full scale tens of millions of entries, with int32 indices) before it becomes dense: a slice of columns
at a time, the only extra memory is one slice's product.
"""

from __future__ import annotations

from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from batch.ranking.positions import Csr
from batch.ranking.recommenders.interactions import binary_rows

Float = TypeVar("Float", np.float32, np.float64)
GRAM_COLUMNS: Final = 512
"""Columns of ``XᵀX`` computed at once: at most 7,023 x 512 entries of the sparse product alive."""
GRAM_USERS: Final = 4_096
"""Users whose rows :func:`weighted_gram` builds at once: at full scale about 1.8 million views, 21 MB in each of the
block's three layouts, where the whole view matrix and its weighted copy would hold over a gigabyte."""


def column_slices(posts: int, width: int = GRAM_COLUMNS) -> list[slice]:
    """Consecutive slices of at most ``width`` columns covering ``posts`` columns."""
    return [slice(start, min(start + width, posts)) for start in range(0, posts, width)]


def dense_gram(likes: sp.csr_matrix, dtype: type[Float]) -> npt.NDArray[Float]:
    """``likesᵀ likes`` as a dense C-ordered array of ``dtype`` (symmetric, so its transpose is the same matrix)."""
    posts = likes.shape[1]
    gram = np.empty((posts, posts), dtype=dtype)
    transposed = sp.csr_matrix(likes.T, dtype=dtype)
    columns = sp.csc_matrix(likes, dtype=dtype)
    for block in column_slices(posts):
        gram[:, block] = (transposed @ columns[:, block]).toarray()
    return gram


def weighted_gram(liked: Csr, viewed: Csr, view_weight: float, posts: int) -> npt.NDArray[np.float64]:
    """``XᵀX`` in float64 for ``X`` = likes + ``view_weight`` x views (both binary CSRs over the same users), summed
    over blocks of :data:`GRAM_USERS` users, so that neither the whole view matrix nor its weighted copy is built.

    Only the lower triangle is multiplied out (each slice of columns from its own first row down) and the upper one is
    copied from it: a view profile's product is what a views EASE's fit spends its time on, and this halves it.
    """
    users = int(liked[0].size) - 1
    gram = np.zeros((posts, posts), dtype=np.float64)
    slices = column_slices(posts)
    for start in range(0, users, GRAM_USERS):
        block_users = np.arange(start, min(start + GRAM_USERS, users), dtype=np.int64)
        likes = binary_rows(liked, block_users, posts).astype(np.float64)
        block = likes + view_weight * binary_rows(viewed, block_users, posts).astype(np.float64)
        transposed = sp.csr_matrix(block.T)
        columns = sp.csc_matrix(block)
        for columns_slice in slices:
            below = slice(columns_slice.start, posts)
            gram[below, columns_slice] += (transposed[below] @ columns[:, columns_slice]).toarray()
    for columns_slice in slices:
        gram[: columns_slice.start, columns_slice] = gram[columns_slice, : columns_slice.start].T
    return gram
