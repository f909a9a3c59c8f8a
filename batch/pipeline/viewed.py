"""The posts each user was shown before each of a few cutoffs, as compact CSRs, from one pass over the feed.

The batch needs the shown pairs at three nested cutoffs (training, validation, scoring), about 70 million at full
scale. Every view row becomes one int64 while it streams in: its pair's row-major key (user position x posts + post
position) times the number of cutoffs, plus the index of the first cutoff it is before. One in-place sort puts each
pair's views next to each other, earliest bucket first, so keeping the first of each key de-duplicates and records
when the pair was first shown. The CSRs cut from that array hold post positions as int16 where the catalog allows.
bench/RESULTS.md has the memory this layout saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl
from sqlalchemy.engine import Engine

from batch.pipeline.extract import copy_chunks
from batch.ranking.positions import Csr, IndexArray, PositionArray, pair_keys, position_dtype
from common.columns import Action, Col, Table

BUCKET: Final = "bucket"
BUCKET_SCHEMA: Final = {Col.USER_ID: pl.Int32(), Col.POST_ID: pl.Int32(), BUCKET: pl.Int16()}
# Entries handled at once when cutting CSRs from the sorted keys, so no temporary is as large as the whole array.
STEP: Final = 1 << 23


class ViewedPairs:
    """Accumulates (user_id, post_id, bucket) view rows and cuts one CSR of shown posts per cutoff.

    A row's bucket is the index of the first cutoff it is strictly before (see :func:`bucket_sql`), so the pair is
    shown before cutoff ``i`` when its earliest bucket is at most ``i``. Unknown users or posts are dropped.
    """

    def __init__(self, user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32], cutoffs: int) -> None:
        """Args: sorted user ids (CSR rows), sorted post ids (CSR columns), the number of cutoffs."""
        self._user_ids, self._post_ids, self._cutoffs = user_ids, post_ids, cutoffs
        self._n_posts = max(post_ids.size, 1)
        self._chunks: list[IndexArray] = []

    def add(self, rows: pl.DataFrame) -> None:
        """Take a chunk of rows with user_id, post_id and bucket columns (buckets in ``0..cutoffs-1``)."""
        rows = rows.drop_nulls()
        users, posts = rows[Col.USER_ID].to_numpy(), rows[Col.POST_ID].to_numpy()
        keys, known = pair_keys(self._user_ids, self._post_ids, users, posts)
        keys *= self._cutoffs
        keys += rows[BUCKET].to_numpy()
        self._chunks.append(keys[known])

    def csrs(self) -> list[Csr]:
        """One (row pointers, sorted post positions) CSR per cutoff, in cutoff order; the rows added are freed."""
        keys = self._sorted_unique()
        return [self._cut(keys, bucket) for bucket in range(self._cutoffs)]

    def _sorted_unique(self) -> IndexArray:
        keys = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int64)
        self._chunks.clear()
        keys.sort()
        return _first_of_each_pair(keys, self._cutoffs)

    def _cut(self, keys: IndexArray, bucket: int) -> Csr:
        dtype = position_dtype(self._n_posts)
        counts = np.zeros(self._user_ids.size, dtype=np.int64)
        posts: list[PositionArray] = []
        for start in range(0, keys.size, STEP):
            part = keys[start : start + STEP]
            pairs = part[part % self._cutoffs <= bucket] // self._cutoffs
            counts += np.bincount(pairs // self._n_posts, minlength=self._user_ids.size)
            posts.append((pairs % self._n_posts).astype(dtype))
        indptr = np.zeros(self._user_ids.size + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, np.concatenate(posts) if posts else np.zeros(0, dtype=dtype)


def _first_of_each_pair(keys: IndexArray, cutoffs: int) -> IndexArray:
    """Keep the first (earliest-bucket) entry of each pair of sorted keys, compacting the array in place."""
    kept = 0
    for start in range(0, keys.size, STEP):
        stop = min(start + STEP, keys.size)
        pairs = keys[max(start - 1, 0) : stop] // cutoffs
        first = np.empty(stop - start, dtype=bool)
        if start == 0:
            first[0] = True
            first[1:] = pairs[1:] != pairs[:-1]
        else:
            first[:] = pairs[1:] != pairs[:-1]
        # The chunk is copied out by the boolean index before the slice it lands in (at or before it) is written.
        chosen = keys[start:stop][first]
        keys[kept : kept + chosen.size] = chosen
        kept += chosen.size
    return keys[:kept]


def bucket_sql(column: str, cutoffs: int) -> str:
    """SQL of the index of the first of the sorted cutoffs ``%(cutoff_0)s, ...`` that ``column`` is before."""
    return " + ".join(f"({column} >= %(cutoff_{i})s)::int" for i in range(cutoffs))


def load_viewed(
    engine: Engine, user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32], cutoffs: Sequence[datetime]
) -> list[Csr]:
    """The CSR of the posts each user was shown before each cutoff (in the order given), from one scan of the feed.

    PostgreSQL only filters and labels the rows; de-duplicating on the client avoids a 70-million-group aggregate
    that PostgreSQL sizes badly with a default ``work_mem``.

    Args:
        engine: Engine on the source database.
        user_ids: Sorted user ids, the CSR rows.
        post_ids: Sorted post ids, the CSR columns.
        cutoffs: Times; only views strictly before a cutoff count for it.
    """
    if not cutoffs:
        return []
    order = sorted(range(len(cutoffs)), key=lambda i: cutoffs[i])
    ascending = [cutoffs[i] for i in order]
    bucket = bucket_sql(f'f."{Col.TIMESTAMP}"', len(ascending))
    sql = (
        f"SELECT f.{Col.USER_ID}, f.{Col.POST_ID}, {bucket}"
        f" FROM {Table.FEED} f"
        f""" WHERE f."{Col.TIMESTAMP}" < %(end)s AND f.{Col.ACTION} = '{Action.VIEW}'"""
    )
    params: dict[str, Any] = {f"cutoff_{i}": cutoff for i, cutoff in enumerate(ascending)}
    params["end"] = ascending[-1]
    viewed = ViewedPairs(user_ids, post_ids, len(ascending))
    copy_chunks(engine, sql, BUCKET_SCHEMA, viewed.add, params)
    by_bucket = viewed.csrs()
    return [by_bucket[order.index(i)] for i in range(len(cutoffs))]
