"""Baseline recommenders for the evaluation: random, popular (global), popular within a segment, and implicit ALS.

Each returns a (users x k) matrix of post ids, best first, computed only from the likes it is given (the caller
passes likes before the cutoff). Posts a user liked before are left in; the serving filter drops them, exactly as
it does for the model's lists.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from common.columns import Col

IntMatrix = npt.NDArray[np.int64]
AGE_BUCKETS = (18, 22, 26, 30, 40, 50)


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


def segment_of() -> pl.Expr:
    """A user's segment: gender and age bucket."""
    bucket = pl.sum_horizontal([(pl.col(Col.AGE) > edge).cast(pl.Int8) for edge in AGE_BUCKETS])
    return pl.concat_str([pl.col(Col.GENDER).cast(pl.String), bucket.cast(pl.String)], separator="|").alias("segment")


def segment_popular_ranking(
    likes: pl.DataFrame, users: pl.DataFrame, user_ids: npt.NDArray[np.int64], post_ids: npt.NDArray[np.int64], k: int
) -> IntMatrix:
    """Top-k by like count among users of the same segment, filled up from the global order."""
    segments = users.select(Col.USER_ID, segment_of())
    liked = likes.join(segments, on=Col.USER_ID, how="inner")
    fallback = popularity_order(likes, post_ids)
    orders = {str(name[0]): _segment_order(group, fallback, k) for name, group in liked.group_by("segment")}
    user_segment = dict(zip(segments[Col.USER_ID].to_list(), segments["segment"].to_list(), strict=True))
    default = fallback[:k]
    return np.stack([orders.get(str(user_segment.get(int(user))), default) for user in user_ids])


def _segment_order(segment_likes: pl.DataFrame, fallback: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    # Posts the segment liked come first by its own counts; the rest keep the global order rather than id order.
    counts = (
        segment_likes.group_by(Col.POST_ID).len(name="likes").sort(["likes", Col.POST_ID], descending=[True, False])
    )
    liked = counts[Col.POST_ID].to_numpy().astype(np.int64)[:k]
    rest = fallback[~np.isin(fallback, liked)]
    return np.concatenate([liked, rest])[:k]


def als_ranking(
    likes: pl.DataFrame,
    user_ids: npt.NDArray[np.int64],
    post_ids: npt.NDArray[np.int64],
    k: int,
    seed: int,
    factors: int = 64,
) -> IntMatrix:
    """Implicit ALS on the user x post like matrix; users without likes get the popularity order."""
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = _like_matrix(likes, user_ids, post_ids)
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; a BLAS pool on top only thrashes
        model = AlternatingLeastSquares(factors=factors, iterations=15, random_state=seed, num_threads=0)
        model.fit(matrix, show_progress=False)
    ids, _scores = model.recommend(np.arange(user_ids.size), matrix, N=k, filter_already_liked_items=False)
    ranked: IntMatrix = post_ids[ids]
    cold = np.asarray(matrix.sum(axis=1)).ravel() == 0
    ranked[cold] = popularity_order(likes, post_ids)[:k]
    return ranked


def _like_matrix(
    likes: pl.DataFrame, user_ids: npt.NDArray[np.int64], post_ids: npt.NDArray[np.int64]
) -> sp.csr_matrix:
    user_index = {int(u): i for i, u in enumerate(user_ids)}
    post_index = {int(p): i for i, p in enumerate(post_ids)}
    pairs = likes.select(Col.USER_ID, Col.POST_ID).unique()
    rows = np.array([user_index.get(int(u), -1) for u in pairs[Col.USER_ID].to_list()], dtype=np.int64)
    cols = np.array([post_index.get(int(p), -1) for p in pairs[Col.POST_ID].to_list()], dtype=np.int64)
    keep = (rows >= 0) & (cols >= 0)
    data = np.ones(int(keep.sum()), dtype=np.float32)
    return sp.csr_matrix((data, (rows[keep], cols[keep])), shape=(user_ids.size, post_ids.size))
