"""What every recommender learns from: the views and likes before a cutoff as user x post matrices.

Rows are the positions of sorted user ids and columns those of sorted post ids, the same positions the pipeline's
feature sets use, so a recommender's score block lines up with a feature block without any re-indexing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from batch.ranking.positions import Csr, IndexArray, csr_entries, id_positions, pairs_csr
from common.columns import Col

SECONDS_PER_DAY: Final = 86_400.0
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Interactions:
    """Views and likes strictly before ``cutoff``.

    Attributes:
        user_ids: Sorted user ids, the rows.
        post_ids: Sorted post ids, the columns.
        cutoff: Nothing at or after it is in here.
        viewed: CSR (row pointers, sorted post positions) of the posts each user viewed.
        liked: CSR of the posts each user liked.
        like_posts: Post position of every like row (repeats kept: each like is an event).
        like_age_days: Days from each like row to the cutoff, for recency weights.
    """

    user_ids: npt.NDArray[np.int32]
    post_ids: npt.NDArray[np.int32]
    cutoff: datetime
    viewed: Csr
    liked: Csr
    like_posts: IndexArray
    like_age_days: FloatArray

    @property
    def shape(self) -> tuple[int, int]:
        """(users, posts)."""
        return (int(self.user_ids.size), int(self.post_ids.size))

    def like_matrix(self) -> sp.csr_matrix:
        """Binary float32 users x posts matrix of likes."""
        return _binary_matrix(self.liked, self.shape)

    def view_matrix(self) -> sp.csr_matrix:
        """Binary float32 users x posts matrix of views."""
        return _binary_matrix(self.viewed, self.shape)

    def like_rows(self, user_positions: IndexArray) -> sp.csr_matrix:
        """Binary float32 (len(user_positions) x posts) likes of some users, built from their rows only."""
        return binary_rows(self.liked, user_positions, self.shape[1])

    def view_rows(self, user_positions: IndexArray) -> sp.csr_matrix:
        """Binary float32 (len(user_positions) x posts) views of some users (70 million pairs at full scale: never
        build the whole matrix for a block)."""
        return binary_rows(self.viewed, user_positions, self.shape[1])

    def user_positions(self, user_ids: npt.ArrayLike) -> IndexArray:
        """Row of each user id.

        Raises:
            KeyError: Some ids are not rows here.
        """
        return id_positions(self.user_ids, user_ids, "user")


def build_interactions(
    user_ids: npt.NDArray[np.int32],
    post_ids: npt.NDArray[np.int32],
    viewed: Csr,
    likes: pl.DataFrame,
    cutoff: datetime,
) -> Interactions:
    """Interactions before ``cutoff`` from the viewed CSR and the like rows.

    Args:
        user_ids: Sorted user ids, the rows (``viewed`` must use the same).
        post_ids: Sorted post ids, the columns.
        viewed: CSR of posts viewed before ``cutoff`` (``batch.pipeline.viewed.load_viewed``).
        likes: Like rows with timestamp, user_id and post_id; rows at or after ``cutoff`` and unknown ids are left
            out here.
        cutoff: The time the interactions stop.
    """
    before = likes.filter(pl.col(Col.TIMESTAMP) < cutoff)
    known = before.filter(pl.col(Col.USER_ID).is_in(user_ids) & pl.col(Col.POST_ID).is_in(post_ids))
    ages = (pl.lit(cutoff) - pl.col(Col.TIMESTAMP)).dt.total_seconds() / SECONDS_PER_DAY
    age_days = known.select(ages.cast(pl.Float64)).to_series().to_numpy()
    return Interactions(
        user_ids=user_ids,
        post_ids=post_ids,
        cutoff=cutoff,
        viewed=viewed,
        liked=pairs_csr(user_ids, post_ids, before.select(Col.USER_ID, Col.POST_ID)),
        like_posts=id_positions(post_ids, known[Col.POST_ID].to_numpy(), "post"),
        like_age_days=np.asarray(age_days, dtype=np.float64),
    )


def viewed_csr(user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32], views: pl.DataFrame) -> Csr:
    """CSR of (user_id, post_id) view pairs, for callers that hold the view rows as a frame (tests, small data)."""
    return pairs_csr(user_ids, post_ids, views.select(Col.USER_ID, Col.POST_ID))


def _binary_matrix(csr: Csr, shape: tuple[int, int]) -> sp.csr_matrix:
    indptr, indices = csr
    if indptr.size == 0:
        return sp.csr_matrix(shape, dtype=np.float32)
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices.astype(np.int32), indptr), shape=shape)


def binary_rows(csr: Csr, user_positions: IndexArray, posts: int) -> sp.csr_matrix:
    """Binary float32 (len(user_positions) x posts) rows of a CSR, built from those rows only."""
    owners, columns = csr_entries(*csr, user_positions)
    data = np.ones(owners.size, dtype=np.float32)
    return sp.csr_matrix((data, (owners, columns.astype(np.int64))), shape=(user_positions.size, posts))
