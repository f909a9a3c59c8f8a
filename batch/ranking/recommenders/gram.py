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

Float = TypeVar("Float", np.float32, np.float64)
GRAM_COLUMNS: Final = 512
"""Columns of ``XᵀX`` computed at once: at most 7,023 x 512 entries of the sparse product alive."""


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
