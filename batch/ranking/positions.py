"""Positions of ids in sorted id arrays, and the compact integer types that hold them in the CSRs of pairs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from common.columns import Col

IndexArray = npt.NDArray[np.int64]
IdArray = npt.NDArray[np.integer[Any]]
PositionArray = npt.NDArray[np.signedinteger[Any]]
BoolArray = npt.NDArray[np.bool_]
# (row pointers, column positions sorted within each row), e.g. the posts each user was shown.
Csr = tuple[IndexArray, PositionArray]


def position_dtype(count: int) -> np.dtype[np.signedinteger[Any]]:
    """The smallest signed integer type holding positions ``0..count-1`` (int16 for a catalog of 7,023 posts)."""
    for dtype in (np.int16, np.int32):
        if count <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def positions_or_last(sorted_ids: IdArray, wanted: npt.NDArray[Any]) -> tuple[IndexArray, BoolArray]:
    """Position of each wanted id in ``sorted_ids`` (int64; the last position for a missing one) and whether it is
    there at all."""
    if sorted_ids.size == 0:
        return np.zeros(wanted.size, dtype=np.int64), np.zeros(wanted.size, dtype=bool)
    positions = np.searchsorted(sorted_ids, wanted).astype(np.int64, copy=False)
    np.minimum(positions, sorted_ids.size - 1, out=positions)
    return positions, sorted_ids[positions] == wanted


def id_positions(sorted_ids: IdArray, wanted: npt.ArrayLike, what: str) -> IndexArray:
    """Position of each wanted id in ``sorted_ids`` (int64).

    Raises:
        KeyError: Some ids are not in ``sorted_ids``; the message names a few of them and ``what`` they are.
    """
    ids = np.asarray(wanted)
    positions, known = positions_or_last(sorted_ids, ids)
    if not known.all():
        raise KeyError(f"unknown {what} ids, e.g. {ids[~known][:5].tolist()}")
    return positions


def pair_keys(
    user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32], users: npt.NDArray[Any], posts: npt.NDArray[Any]
) -> tuple[IndexArray, BoolArray]:
    """Row-major key (user position * posts + post position) of each (user id, post id) pair, and whether both ids
    are known (an unknown pair's key is meaningless). Computed in place on one int64 array per pair.

    Args:
        user_ids: Sorted user ids, the rows.
        post_ids: Sorted post ids, the columns.
        users: The pairs' user ids (no nulls).
        posts: The pairs' post ids (no nulls).
    """
    keys, known = positions_or_last(user_ids, users)
    columns, known_post = positions_or_last(post_ids, posts)
    known &= known_post
    keys *= max(post_ids.size, 1)
    keys += columns
    return keys, known


def pairs_csr(user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32], pairs: pl.DataFrame) -> Csr:
    """CSR (row pointers, sorted post positions per user) of (user_id, post_id) pairs; unknown ids and repeats are
    dropped.

    Everything works on one int64 key per pair (row * posts + column) with in-place numpy steps, so the transient
    memory stays a few copies of that key (about 70 million pairs at full scale).

    Args:
        user_ids: Sorted user ids, one row each.
        post_ids: Sorted post ids, one column each.
        pairs: user_id and post_id columns.
    """
    if pairs[Col.USER_ID].null_count() or pairs[Col.POST_ID].null_count():
        pairs = pairs.drop_nulls([Col.USER_ID, Col.POST_ID])
    n_posts = max(post_ids.size, 1)
    keys, known = pair_keys(user_ids, post_ids, pairs[Col.USER_ID].to_numpy(), pairs[Col.POST_ID].to_numpy())
    unique_keys = np.unique(keys[known])
    del keys, known
    indptr = np.zeros(user_ids.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(unique_keys // n_posts, minlength=user_ids.size), out=indptr[1:])
    return indptr, (unique_keys % n_posts).astype(position_dtype(n_posts))


def csr_entries(indptr: IndexArray, indices: PositionArray, rows: IndexArray) -> tuple[IndexArray, PositionArray]:
    """(index into ``rows``, column) of every entry of the given CSR rows; an empty ``indptr`` has none."""
    if indptr.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    owners = np.repeat(np.arange(rows.size), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owners, indices[np.repeat(starts, lengths) + offsets]


def csr_contains(
    indptr: IndexArray, indices: PositionArray, columns: int, rows: IndexArray, cols: IndexArray
) -> BoolArray:
    """Whether each (row, col) is an entry of a CSR whose columns are sorted within each row.

    Only the rows asked about are expanded into sorted (row, column) keys for one binary search, so the memory
    follows the rows asked about, not the whole CSR (70 million entries at full scale).

    Args:
        indptr: Row pointers; empty = no entries at all.
        indices: Column of each entry, sorted within each row.
        columns: Number of columns (any value above the largest column).
        rows: Row of each pair asked about.
        cols: Column of each pair asked about.
    """
    if indptr.size == 0 or rows.size == 0:
        return np.zeros(rows.size, dtype=bool)
    asked, local_rows = np.unique(rows, return_inverse=True)
    owners, entry_cols = csr_entries(indptr, indices, asked)
    width = max(columns, 1)
    keys = owners * width + entry_cols
    wanted = local_rows.astype(np.int64) * width + cols
    if keys.size == 0:
        return np.zeros(rows.size, dtype=bool)
    found = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    hits: BoolArray = keys[found] == wanted
    return hits


def by_owner_blocks(owners: IndexArray, block_size: int) -> Iterator[tuple[IndexArray, IndexArray, IndexArray]]:
    """Pairs grouped by blocks of ``block_size`` distinct owners (e.g. users), so each block's scores are computed
    once for all its pairs: per block, (the pairs' rows, the block's distinct owners, each pair's index into them)."""
    distinct, inverse = np.unique(owners, return_inverse=True)
    block_of = inverse // block_size
    order = np.argsort(block_of, kind="stable")
    bounds = np.searchsorted(block_of[order], np.arange(block_of.max(initial=-1) + 2))
    for block in range(bounds.size - 1):
        rows = order[bounds[block] : bounds[block + 1]]
        first = block * block_size
        yield rows, distinct[first : first + block_size], inverse[rows] - first
