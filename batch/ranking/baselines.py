"""The evaluation's reference rows: a random order and popularity by likes, neither of them seen-aware.

Each returns a (users x k) matrix of post ids, best first, computed only from the likes it is given (the caller
passes likes before the cutoff). Posts a user liked before are left in; the serving filter drops them, exactly as
it does for the model's lists. The baselines a model must beat are the seen-aware ones of
:mod:`batch.ranking.recommenders`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from common.columns import Col

IntMatrix = npt.NDArray[np.int64]


def random_ranking(user_ids: npt.NDArray[np.int64], post_ids: npt.NDArray[np.int64], k: int, seed: int) -> IntMatrix:
    """An independent random order of the catalog per user."""
    rng = np.random.default_rng(seed)
    keys = rng.random((user_ids.size, post_ids.size))
    return post_ids[np.argsort(keys, axis=1)[:, :k]]


def popularity_order(likes: pl.DataFrame, post_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The whole catalog ordered by like count, ties by post id; never-liked posts last."""
    counts = likes.group_by(Col.POST_ID).len(name="likes")
    catalog = pl.DataFrame({Col.POST_ID: post_ids.astype(np.int32)}).join(counts, on=Col.POST_ID, how="left")
    ordered = catalog.with_columns(pl.col("likes").fill_null(0)).sort(["likes", Col.POST_ID], descending=[True, False])
    return ordered[Col.POST_ID].to_numpy().astype(np.int64)


def popular_ranking(
    likes: pl.DataFrame, user_ids: npt.NDArray[np.int64], post_ids: npt.NDArray[np.int64], k: int
) -> IntMatrix:
    """The same top-k by like count for every user."""
    top = popularity_order(likes, post_ids)[:k]
    return np.broadcast_to(top, (user_ids.size, top.size)).copy()
