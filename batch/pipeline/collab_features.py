"""Collaborative features of both models: the seen-aware baselines' user x post scores, as CatBoost columns.

For one cutoff, only the post side is fitted, on likes before it: item-kNN's pruned cosine similarity, EASE's
item-item weights, implicit ALS's post factors and the recency-weighted like count of each post. The user side is
what the feature set already holds at that cutoff, the CSRs of each user's likes and views, so a score block is a
sparse x dense product (a user's likes @ an item matrix), computed per block of users like the taste cosine:

- ``collab_knn_likes`` / ``collab_knn_views``: the user's liked / viewed posts @ the kNN similarity;
- ``collab_ease_likes``: the user's liked posts @ EASE's B;
- ``collab_als``: the user's ALS factors, folded in from its likes against the post factors (one small solve per
  user, as implicit's own user step), dotted with the post factors;
- ``collab_recent_popularity``: the post's likes, each weighted ``0.5 ** (age / half life)``;
- ``collab_era_popularity``: the same weighted count as of the user's latest like (see
  :mod:`batch.pipeline.era_popularity`): what was popular when the user was last active;
- ``collab_era_trend``: as of the user's latest like too, the post's count with a half-day half life over its era
  popularity (both plus one): near 1 for a post whose likes came in the last hours, rising, near 0 for one that is
  fading. A count with a 3-day half life cannot tell the two apart the day a hit starts trending, when it is the
  post most users will like over the next days. Read at the user's latest like rather than at the cutoff, it says
  what was rising when the user was last active: under a per-user hold-out the cutoff's own trends concern few users;
- ``collab_recent_trend``: the same ratio read at the cutoff, for a user whose latest like is at most
  ``CollabParams.recent_days`` before it (NaN for anyone else): a user active in the last hours sees what rose since
  their latest like, the day a hit starts trending, where the era trend still reads the day before. Read at the
  cutoff for everyone it taught the trees to push the cutoff's hits to users last active months before, whose next
  views (a per-user hold-out's) came long before them;
- ``collab_cluster_like_lift`` / ``collab_cluster_view_lift``: how much more than of its topic the user liked /
  was shown of the post's co-view cluster, a sub-topic found from who was shown each post
  (:mod:`batch.pipeline.coview_clusters`);
- ``*_rank``: each post's place in the user's own order of the kNN, EASE and ALS scores among the posts not shown
  to the user (capped at :data:`RANK_DEPTH`), so that "near this user's top" is one threshold for every user.

Users without a like score 0 on the like-based columns; the base features say how active a user is. Because the user
side is the feature set's own, a worker shard or a one-user rescore needs only the post side (:func:`collab_arrays`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from batch.pipeline.coview_clusters import CoviewClusters, fit_coview_clusters
from batch.pipeline.embed_features import als_space
from batch.pipeline.era_popularity import EraPopularity, fit_era_popularity
from batch.pipeline.features import SECONDS_PER_DAY, DayArray, FeatureSet, FloatArray
from batch.pipeline.row_history import RowHistories, ShownRows
from batch.pipeline.segment_popularity import SegmentLift, fit_segment_lift
from batch.ranking.positions import IndexArray, PositionArray, by_owner_blocks, csr_entries, positions_or_last
from batch.ranking.recommenders.ease import ease_weights
from batch.ranking.recommenders.item_knn import pruned_cosine
from common.columns import Col
from common.errors import ArtifactMismatchError

log = logging.getLogger(__name__)

# Users whose scores are computed at once for training pairs: 256 x 7,023 posts x 13 columns of float32 is 93 MB.
PAIR_BLOCK_USERS: Final = 256
# Above this share of the catalog per user on average, a block's profiles @ kNN similarity is accumulated densely
# rather than as scipy's sparse x sparse product: measured at full scale (142 users, 100 neighbours per post), the
# sparse product took 8.5 ns per (profile entry, neighbour) pair, the dense one 0.23 ns per (user, similarity entry),
# a ratio of 0.027 (views, ~375 per user: 45 -> 23 ms per block; likes, ~50 per user, stay sparse: 8.5 ms).
DENSE_PROFILE_SHARE: Final = 0.027


class CollabFeature:
    """Names of the collaborative features, in the order of their columns."""

    KNN_LIKES: Final = "collab_knn_likes"
    KNN_VIEWS: Final = "collab_knn_views"
    EASE_LIKES: Final = "collab_ease_likes"
    ALS: Final = "collab_als"
    RECENT_POPULARITY: Final = "collab_recent_popularity"
    KNN_LIKES_RANK: Final = "collab_knn_likes_rank"
    KNN_VIEWS_RANK: Final = "collab_knn_views_rank"
    EASE_LIKES_RANK: Final = "collab_ease_likes_rank"
    ALS_RANK: Final = "collab_als_rank"
    ERA_GAP: Final = "collab_era_gap_days"
    ERA_POPULARITY: Final = "collab_era_popularity"
    CLUSTER_LIKE_LIFT: Final = "collab_cluster_like_lift"
    CLUSTER_VIEW_LIFT: Final = "collab_cluster_view_lift"
    ERA_TREND: Final = "collab_era_trend"
    RECENT_TREND: Final = "collab_recent_trend"


COLLAB_NAMES: Final = (
    CollabFeature.KNN_LIKES,
    CollabFeature.KNN_VIEWS,
    CollabFeature.EASE_LIKES,
    CollabFeature.ALS,
    CollabFeature.RECENT_POPULARITY,
    CollabFeature.KNN_LIKES_RANK,
    CollabFeature.KNN_VIEWS_RANK,
    CollabFeature.EASE_LIKES_RANK,
    CollabFeature.ALS_RANK,
    CollabFeature.ERA_GAP,
    CollabFeature.ERA_POPULARITY,
    CollabFeature.CLUSTER_LIKE_LIFT,
    CollabFeature.CLUSTER_VIEW_LIFT,
    CollabFeature.ERA_TREND,
    CollabFeature.RECENT_TREND,
)
# Ranks below this are written as this: only the head of a user's order decides a list of 5.
RANK_DEPTH: Final = 50


@dataclass(frozen=True, slots=True)
class CollabParams:
    """Settings of the collaborative features (the first point of each baseline's tuning grid).

    Attributes:
        neighbours: Similar posts kept per post by item-kNN.
        ease_regularization: EASE's λ; a build sets it to the label window's best (``pipeline/label_tuning.py``).
        als_factors: ALS latent dimensions.
        als_regularization: ALS L2 weight.
        als_alpha: Confidence of a like in ALS (implicit's ``alpha``).
        half_life_days: Age at which a like counts half in the recency-weighted popularity.
        era_half_life_days: The same for the era popularity, read at each user's latest like.
        trend_half_life_days: The short half life of the era trend column, set against ``era_half_life_days``.
        recent_days: A user whose latest like is at most this long before the cutoff reads the trend at the cutoff.
        clusters: Co-view clusters over the catalog, within topics. Over the world family (small scale, the 14
            cells whose hold-out stayed the same) 80 of them lifted ``control``'s hitrate@5 by 0.041 on average
            (0.016 to 0.067 per cell) and ``test``'s by 0.019 (bench/RESULTS.md, stop 31).
        coview_dim: Dimensions of the co-view vectors the clusters are made from.
        seed: Seed of the ALS factors, the co-view vectors and the clusters.
    """

    neighbours: int = 100
    ease_regularization: float = 300.0
    als_factors: int = 32
    als_regularization: float = 0.05
    als_alpha: float = 5.0
    half_life_days: float = 3.0
    era_half_life_days: float = 3.0
    trend_half_life_days: float = 0.5
    recent_days: float = 1.0
    clusters: int = 80
    coview_dim: int = 64
    seed: int = 0

    @classmethod
    def from_saved(cls, saved: Mapping[str, object], seed: int) -> CollabParams:
        """The settings a version saved; a version saved before they were recorded used the defaults, seeded as its
        embedding settings were."""
        return cls(**{"seed": seed, **saved})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class CollabModel:
    """The post side of the collaborative features at one cutoff; scores any feature set's users at that cutoff.

    Attributes:
        post_ids: Sorted post ids: the columns of every matrix, the same as the feature set's.
        similar: (posts x posts) CSR of item-kNN's pruned cosine similarity.
        ease: (posts x posts) float32 EASE weights B.
        als_posts: (posts x factors) float32 ALS post factors.
        als_gram: (factors x factors) ``YᵀY + λI`` of the post factors, shared by every user's fold-in.
        als_alpha: Confidence of a like in the fold-in.
        recent_popularity: Recency-weighted like count per post, float32.
        post_era: Mean time of each post's likes, in days since the epoch (float32; NaN for a post without any).
        era_popularity: Each post's recency-weighted like count at any moment, read at a user's latest like.
        era_trend: The same with the short half life of the era trend column.
        cutoff_day: The cutoff, in days since the epoch.
        cutoff_trend: Each post's trend ratio at the cutoff (float32).
        recent_days: How recent a user's latest like must be to read :attr:`cutoff_trend`.
        clusters: The co-view clusters of the posts, with everyone's view shares.
        segment_lift: Each post's log lift in each gender and age band and in each operating system, and its log
            overall share, which scoring tilts a user without history's scores with
            (:mod:`batch.pipeline.segment_popularity`); not a column.
        similar_t: ``similar`` transposed, as CSR (derived).
    """

    post_ids: npt.NDArray[np.int32]
    similar: sp.csr_matrix
    ease: FloatArray
    als_posts: FloatArray
    als_gram: FloatArray
    als_alpha: float
    recent_popularity: FloatArray
    post_era: FloatArray
    era_popularity: EraPopularity
    era_trend: EraPopularity
    cutoff_day: float
    cutoff_trend: FloatArray
    recent_days: float
    clusters: CoviewClusters
    segment_lift: SegmentLift

    similar_t: sp.csr_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The similarity's columns as rows, for the dense path of the kNN product: derived once per cutoff, not
        # per block.
        object.__setattr__(self, "similar_t", self.similar.T.tocsr())

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in order."""
        return COLLAB_NAMES

    def score_block(self, features: ShownRows, users: IndexArray) -> FloatArray:
        """(users x posts x columns) float32 scores of the feature set's users at ``users`` positions."""
        return np.stack(self.score_columns(features, users), axis=-1)

    def score_columns(self, features: ShownRows, users: IndexArray) -> list[FloatArray]:
        """Each column's (users x posts) float32 scores, in the order of :attr:`names`."""
        columns = [np.empty((users.size, self.post_ids.size), dtype=np.float32) for _ in COLLAB_NAMES]
        self._write_columns(features, users, columns)
        return columns

    def fill_block(self, out: FloatArray, features: FeatureSet, users: IndexArray) -> None:
        """Write the columns of every (user, post) of a block into ``out`` (users * posts x columns), user-major
        rows as in ``batch.pipeline.features.block_matrix``; ``out`` is Fortran-ordered (each column contiguous),
        e.g. a column slice of the model's matrix, and each score is written straight into it."""
        if not out.flags.f_contiguous:
            raise ValueError(f"collaborative columns need a Fortran-ordered matrix, got strides {out.strides}")
        shape = (users.size, self.post_ids.size)
        self._write_columns(features, users, [out[:, column].reshape(shape) for column in range(len(COLLAB_NAMES))])

    def _write_columns(self, features: ShownRows, users: IndexArray, columns: list[FloatArray]) -> None:
        """Write each column's (users x posts) scores into ``columns``, in the order of :attr:`names`."""
        likes = _rows_matrix(features.liked_indptr, features.liked_posts, users, self.post_ids.size)
        views = _rows_matrix(features.viewed_indptr, features.viewed_posts, users, self.post_ids.size)
        (
            knn_likes,
            knn_views,
            ease,
            als,
            popularity,
            *ranks,
            era_gap,
            era_popularity,
            cluster_likes,
            cluster_views,
            trend,
            recent_trend,
        ) = columns
        # A block's products are small: a BLAS pool's threads cost more CPU than they save (the ALS columns took
        # 17-26 ms of CPU per 142-user block with two threads on a loaded machine, 4 ms with one).
        with _blas_controller().limit(limits=1, user_api="blas"):
            profile_times_similar(likes, self.similar, self.similar_t, knn_likes)
            profile_times_similar(views, self.similar, self.similar_t, knn_views)
            # Post-major (CSC): each liked post's row of B is added to its users in turn, so B, 197 MB, is read
            # in order rather than by jumps from user to user (17 -> 11.5 ms per block, the same sums in the
            # same order).
            ease[:] = likes.tocsc() @ self.ease
            np.matmul(self.fold_in(likes), self.als_posts.T, out=als)
        popularity[:] = self.recent_popularity
        np.subtract(self.post_era[None, :], self.user_era(likes)[:, None], out=era_gap)
        self.era_popularity.write_at(features.last_like_days[users], era_popularity)
        self.era_trend.write_at(features.last_like_days[users], trend)
        trend_ratio(trend, era_popularity, out=trend)
        self.write_recent_trend(features.last_like_days[users], recent_trend)
        self.clusters.write_columns(features, users, cluster_likes, cluster_views)
        shown = csr_entries(features.viewed_indptr, features.viewed_posts, users)
        for raw, rank in zip((knn_likes, knn_views, ease, als), ranks, strict=True):
            rank_among_unseen(raw, shown, rank)

    def write_recent_trend(self, last_like_days: DayArray, out: FloatArray) -> None:
        """:attr:`cutoff_trend` in the rows of users whose latest like is at most :attr:`recent_days` before the
        cutoff, NaN in the others' (no like, an older one, or a training state's like after the cutoff)."""
        gap = self.cutoff_day - last_like_days
        recent = (gap >= 0) & (gap <= self.recent_days)
        out[:] = np.nan
        out[recent] = self.cutoff_trend

    def user_era(self, likes: sp.csr_matrix) -> FloatArray:
        """Each user's mean :attr:`post_era` over their liked posts (NaN without a liked post that has one).

        Its gap to a post's era says whether the post belongs to the time the user was active: under a per-user
        hold-out a user's next likes fall in their own active days, which on a feed of short bursts can be a year
        before as_of, where the post's recent counts at as_of say nothing.
        """
        known = ~np.isnan(self.post_era)
        eras = np.where(known, self.post_era, 0.0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means: FloatArray = (likes @ eras / (likes @ known.astype(np.float64))).astype(np.float32)
        return means

    def fold_in(self, likes: sp.csr_matrix) -> FloatArray:
        """ALS user factors from the users' like rows, solved as implicit's own user step with confidence
        ``c = alpha`` per like: ``(YᵀY + λI + (c - 1) Y_uᵀY_u) x = c Y_uᵀ 1``; zero for a user without a like.

        Solving from the likes (not storing each user's factors) is what lets a shard or a one-user rescore score
        with the post side alone, and a user's likes of now give its factors of now. The systems are built per user
        and solved in one batched call (a solve per user cost as much again).
        """
        factors_count = self.als_posts.shape[1]
        active = np.flatnonzero(np.diff(likes.indptr))
        grams = np.empty((active.size, factors_count, factors_count), dtype=np.float32)
        sums = np.empty((active.size, factors_count), dtype=np.float32)
        for slot, row in enumerate(active):
            vectors = self.als_posts[likes.indices[likes.indptr[row] : likes.indptr[row + 1]]]
            np.matmul(vectors.T, vectors, out=grams[slot])
            vectors.sum(axis=0, out=sums[slot])
        systems = self.als_gram + np.float32(self.als_alpha - 1.0) * grams
        factors = np.zeros((likes.shape[0], factors_count), dtype=np.float32)
        if active.size:
            factors[active] = np.linalg.solve(systems, np.float32(self.als_alpha) * sums[:, :, None])[:, :, 0]
        return factors

    def pair_matrix(self, features: ShownRows, users: IndexArray, posts: IndexArray) -> FloatArray:
        """(pairs x columns) float32 for arbitrary (user position, post position) pairs, e.g. validation rows."""
        return self._pairs(users, posts, lambda distinct: self.score_columns(features, distinct))

    def history_pair_matrix(self, histories: RowHistories, posts: IndexArray) -> FloatArray:
        """(rows x columns) float32 of training rows, each scored from its user's state at the row's time (see
        :mod:`batch.pipeline.row_history`); ``posts`` are the rows' post positions."""

        def block_columns(states: IndexArray) -> list[FloatArray]:
            return self.score_columns(histories.block(states), np.arange(states.size))

        return self._pairs(histories.state_of_row, posts, block_columns)

    def _pairs(
        self, owners: IndexArray, posts: IndexArray, columns_of: Callable[[IndexArray], list[FloatArray]]
    ) -> FloatArray:
        """Each pair's columns, from the score columns of its owner's block (owners: user positions or states)."""
        out = np.empty((owners.size, len(COLLAB_NAMES)), dtype=np.float32)
        for rows, distinct, local in by_owner_blocks(owners, PAIR_BLOCK_USERS):
            for column, values in enumerate(columns_of(distinct)):
                out[rows, column] = values[local, posts[rows]]
        return out


def rank_among_unseen(scores: FloatArray, shown: tuple[IndexArray, IndexArray], out: FloatArray) -> None:
    """Each post's place in its user's order of ``scores`` among the posts the user was not shown (0 = first),
    capped at :data:`RANK_DEPTH`; shown posts and scores of exactly 0 get the cap.

    A raw score grows with how many posts the user liked, so one threshold means "near the top" for one user and
    "anywhere" for another, while the lists need each user's own order; this column gives it to the trees (on the
    bursty world's per-user hold-out, with more never-shown negatives, such ranks lifted control by about 0.02 to
    0.03). Shown posts are left out because the lists leave them out.
    """
    # Negated in place, so that the smallest come first: one copy of the block, not three (scoring runs this on
    # four columns of every block; 13 -> 7 ms per 142-user column).
    negated = np.negative(scores)
    negated[shown] = np.inf
    negated[negated == 0] = np.inf  # no evidence at all (a cold user, a post no liked post is near): no place
    depth = min(RANK_DEPTH, negated.shape[1])
    head = np.argpartition(negated, depth - 1, axis=1)[:, :depth]
    order = np.take_along_axis(head, np.argsort(np.take_along_axis(negated, head, axis=1), axis=1, kind="stable"), 1)
    out.fill(RANK_DEPTH)
    placed = np.isfinite(np.take_along_axis(negated, order, axis=1))  # a user with fewer than depth ranked posts
    rows = np.broadcast_to(np.arange(order.shape[0])[:, None], order.shape)
    ranks = np.broadcast_to(np.arange(depth, dtype=np.float32), order.shape)
    out[rows[placed], order[placed]] = ranks[placed]


def profile_times_similar(
    profiles: sp.csr_matrix, similar: sp.csr_matrix, similar_t: sp.csr_matrix, out: FloatArray
) -> None:
    """Write ``profiles @ similar`` (users x posts) into ``out``, by whichever of two exact products is cheaper.

    The product is nearly dense for view profiles. scipy's sparse x sparse product pays for every (profile entry,
    neighbour) pair; accumulating the similarity's columns over a dense, transposed profile block pays for every
    (user, similarity entry) pair instead, about 37 times less per pair (see :data:`DENSE_PROFILE_SHARE`).
    """
    users, posts = profiles.shape
    if profiles.nnz > DENSE_PROFILE_SHARE * users * posts:
        transposed = np.zeros((posts, users), dtype=np.float32)
        transposed[profiles.indices, np.repeat(np.arange(users), np.diff(profiles.indptr))] = profiles.data
        out[:] = (similar_t @ transposed).T
    else:
        (profiles @ similar).toarray(out=out)


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """The process's thread pools, inspected once (each inspection walks the loaded libraries: 0.5 ms)."""
    return ThreadpoolController()


def _rows_matrix(indptr: IndexArray, indices: PositionArray, users: IndexArray, posts: int) -> sp.csr_matrix:
    """Binary float32 (users x posts) CSR of the given rows of a CSR."""
    owners, columns = csr_entries(indptr, indices, users)
    values = np.ones(owners.size, dtype=np.float32)
    return sp.csr_matrix((values, (owners, columns.astype(np.int64))), shape=(users.size, posts), dtype=np.float32)


def _likes_by_post(
    likes: pl.DataFrame, post_ids: npt.NDArray[np.int32], cutoff: datetime, value: pl.Expr
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per post, the sum of ``value`` over its likes before ``cutoff``, and how many likes that is."""
    before = likes.filter(pl.col(Col.TIMESTAMP) < cutoff)
    values = before.select(value.cast(pl.Float64)).to_series().to_numpy()
    positions, known = positions_or_last(post_ids, before[Col.POST_ID].to_numpy())
    sums = np.bincount(positions[known], weights=values[known], minlength=post_ids.size).astype(np.float64)
    return sums, np.bincount(positions[known], minlength=post_ids.size).astype(np.float64)


def recency_popularity(
    likes: pl.DataFrame, post_ids: npt.NDArray[np.int32], cutoff: datetime, half_life_days: float
) -> FloatArray:
    """Each post's likes before ``cutoff``, each weighted ``0.5 ** (age in days / half_life_days)``."""
    age_days = (pl.lit(cutoff) - pl.col(Col.TIMESTAMP)).dt.total_seconds() / SECONDS_PER_DAY
    weighted, _ = _likes_by_post(likes, post_ids, cutoff, pl.lit(0.5).pow(age_days / half_life_days))
    return weighted.astype(np.float32)


def post_eras(likes: pl.DataFrame, post_ids: npt.NDArray[np.int32], cutoff: datetime) -> FloatArray:
    """Each post's mean like time before ``cutoff`` in days since the epoch; NaN for a post without a like."""
    days, counts = _likes_by_post(likes, post_ids, cutoff, pl.col(Col.TIMESTAMP).dt.epoch("s") / SECONDS_PER_DAY)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (days / counts).astype(np.float32)


def fit_collab(features: FeatureSet, likes: pl.DataFrame, params: CollabParams) -> CollabModel:
    """The post side at the feature set's cutoff, from the likes before it (the feature set's liked CSR).

    Args:
        features: The feature set of the cutoff: its liked CSR is what kNN, EASE and ALS learn from.
        likes: Like rows (timestamp, user_id, post_id), for the recency weights; rows at or after the cutoff are
            ignored.
        params: Settings.
    """
    matrix = _rows_matrix(
        features.liked_indptr, features.liked_posts, np.arange(features.user_ids.size), features.post_ids.size
    )
    als = als_space(
        likes,
        features.cutoff,
        features.user_ids,
        features.post_ids,
        factors=params.als_factors,
        regularization=params.als_regularization,
        alpha=params.als_alpha,
        seed=params.seed,
    )
    gram = als.post_vectors.T @ als.post_vectors + params.als_regularization * np.eye(params.als_factors)
    log.info("collab features: cutoff=%s users=%d likes=%d", features.cutoff, matrix.shape[0], matrix.nnz)
    return CollabModel(
        post_ids=features.post_ids,
        similar=pruned_cosine(matrix, params.neighbours),
        ease=ease_weights(matrix, params.ease_regularization),
        als_posts=np.ascontiguousarray(als.post_vectors, dtype=np.float32),
        als_gram=gram.astype(np.float32),
        als_alpha=params.als_alpha,
        recent_popularity=recency_popularity(likes, features.post_ids, features.cutoff, params.half_life_days),
        post_era=post_eras(likes, features.post_ids, features.cutoff),
        # Every like, not only those before the cutoff: training states read it at their own moments, in the
        # label window, and each reads only the likes before its moment.
        era_popularity=fit_era_popularity(likes, features.post_ids, params.era_half_life_days),
        era_trend=fit_era_popularity(likes, features.post_ids, params.trend_half_life_days),
        cutoff_day=epoch_days(features.cutoff),
        cutoff_trend=cutoff_trend(likes, features.post_ids, features.cutoff, params),
        recent_days=params.recent_days,
        clusters=fit_coview_clusters(features, params.clusters, params.coview_dim, params.seed),
        segment_lift=fit_segment_lift(features),
    )


def epoch_days(moment: datetime) -> float:
    """Days since the epoch of a time, a naive one read as UTC as the feed's timestamps are."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.timestamp() / SECONDS_PER_DAY


def cutoff_trend(
    likes: pl.DataFrame, post_ids: npt.NDArray[np.int32], cutoff: datetime, params: CollabParams
) -> FloatArray:
    """Each post's era trend ratio at the cutoff itself: its likes with the trend's half life over those with the
    era popularity's (both plus one), counted exactly rather than from a grid point before the cutoff."""
    short = recency_popularity(likes, post_ids, cutoff, params.trend_half_life_days)
    return trend_ratio(short, recency_popularity(likes, post_ids, cutoff, params.era_half_life_days), out=short)


def trend_ratio(short: FloatArray, long: FloatArray, out: FloatArray) -> FloatArray:
    """``(short + 1) / (long + 1)`` into ``out`` (which may be ``short``): a count with the trend's half life over
    one with the era popularity's, near 1 for a post on the rise, near 0 for one fading."""
    np.add(short, 1.0, out=out)
    np.divide(out, long + 1.0, out=out)
    return out


# What :func:`collab_arrays` stages for a refresh's workers.
COLLAB_ARRAYS: Final = (
    "post_ids",
    "similar_data",
    "similar_indices",
    "similar_indptr",
    "ease",
    "als_posts",
    "als_gram",
    "als_alpha",
    "recent_popularity",
    "post_era",
    "era_counts",
    "era_grid",
    "era_trend_counts",
    "era_trend_grid",
    "cutoff_trend",
    "recent_grid",
    "cluster_labels",
    "cluster_topics",
    "cluster_everyone",
    "cluster_like_prior",
    "segment_lift",
    "segment_log_share",
    "segment_os_lift",
)


def collab_arrays(model: CollabModel) -> dict[str, npt.NDArray[np.generic]]:
    """The post side as plain arrays, for a worker's shards to read (see :func:`collab_from_arrays`)."""
    similar = model.similar
    return {
        "post_ids": model.post_ids,
        "similar_data": similar.data,
        "similar_indices": similar.indices,
        "similar_indptr": similar.indptr,
        "ease": model.ease,
        "als_posts": model.als_posts,
        "als_gram": model.als_gram,
        "als_alpha": np.array([model.als_alpha], dtype=np.float64),
        "recent_popularity": model.recent_popularity,
        "post_era": model.post_era,
        "era_counts": model.era_popularity.counts,
        "era_grid": _era_grid(model.era_popularity),
        "era_trend_counts": model.era_trend.counts,
        "era_trend_grid": _era_grid(model.era_trend),
        "cutoff_trend": model.cutoff_trend,
        "recent_grid": np.array([model.cutoff_day, model.recent_days]),
        "cluster_labels": model.clusters.labels,
        "cluster_topics": model.clusters.topics,
        "cluster_everyone": model.clusters.everyone,
        "cluster_like_prior": np.array([model.clusters.like_prior]),
        "segment_lift": model.segment_lift.lift,
        "segment_log_share": model.segment_lift.log_share,
        "segment_os_lift": model.segment_lift.os_lift,
    }


def collab_from_arrays(arrays: dict[str, npt.NDArray[np.generic]]) -> CollabModel:
    """The post side from :func:`collab_arrays`; a version staged by older code, without some of them, raises
    :class:`ArtifactMismatchError` naming them."""
    missing = sorted(set(COLLAB_ARRAYS) - set(arrays))
    if missing:
        raise ArtifactMismatchError(
            f"the version's collaborative post side lacks {', '.join(missing)} (staged by older code): "
            "run `postrec build` to make a version for this code"
        )
    posts = int(arrays["post_ids"].size)
    similar = sp.csr_matrix(
        (arrays["similar_data"], arrays["similar_indices"], arrays["similar_indptr"]), shape=(posts, posts)
    )
    return CollabModel(
        post_ids=arrays["post_ids"].astype(np.int32),
        similar=similar,
        ease=arrays["ease"].astype(np.float32, copy=False),
        als_posts=arrays["als_posts"].astype(np.float32, copy=False),
        als_gram=arrays["als_gram"].astype(np.float32, copy=False),
        als_alpha=float(arrays["als_alpha"][0]),
        recent_popularity=arrays["recent_popularity"].astype(np.float32, copy=False),
        post_era=arrays["post_era"].astype(np.float32, copy=False),
        era_popularity=_era_from_arrays(arrays["era_grid"], arrays["era_counts"]),
        era_trend=_era_from_arrays(arrays["era_trend_grid"], arrays["era_trend_counts"]),
        cutoff_day=float(arrays["recent_grid"][0]),
        recent_days=float(arrays["recent_grid"][1]),
        cutoff_trend=arrays["cutoff_trend"].astype(np.float32, copy=False),
        clusters=CoviewClusters(
            labels=arrays["cluster_labels"].astype(np.int64, copy=False),
            topics=arrays["cluster_topics"].astype(np.int64, copy=False),
            everyone=arrays["cluster_everyone"].astype(np.float32, copy=False),
            like_prior=float(arrays["cluster_like_prior"][0]),
        ),
        segment_lift=SegmentLift(
            arrays["segment_lift"].astype(np.float32, copy=False),
            arrays["segment_log_share"].astype(np.float32, copy=False),
            arrays["segment_os_lift"].astype(np.float32, copy=False),
        ),
    )


def _era_grid(era: EraPopularity) -> npt.NDArray[np.float64]:
    return np.array([era.origin_day, era.step_days, era.half_life_days])


def _era_from_arrays(grid: npt.NDArray[np.generic], counts: npt.NDArray[np.generic]) -> EraPopularity:
    origin_day, step_days, half_life_days = (float(value) for value in grid)
    return EraPopularity(origin_day, step_days, half_life_days, counts.astype(np.float32, copy=False))
