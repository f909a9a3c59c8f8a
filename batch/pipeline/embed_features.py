"""Features of the ``test`` model derived from the post embeddings and from who liked what.

Per post (text only, so no cutoff applies): a few principal components of its embedding, its KMeans cluster and
its distance to every cluster centre. Per user x post: the cosine between the post and the user's taste (the
time-decayed mean of the embeddings of the posts the user liked before the cutoff), a :class:`UserPostSpace` scored
in blocks of users against the whole catalog, in float32, so a full-scale matrix (163,205 x 7,023) never has to exist
at once; and the text kNN (:class:`TextNeighbours`): the same like weights times each liked post's cosine to the post
among its nearest by text, so a user of several sub-topics is not blurred into their mean. The cluster lifts of
:mod:`batch.pipeline.cluster_lift` are user x post spaces as well. The implicit-ALS factors (:func:`als_space`) feed
the collaborative features of both models (:mod:`batch.pipeline.collab_features`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from batch.pipeline.embed import AUTO, EmbeddingInfo, FloatMatrix, IdArray, PostEmbeddings
from batch.pipeline.features import MICROSECONDS_PER_DAY
from batch.ranking.positions import by_owner_blocks, id_positions, pairs_csr, positions_or_last
from common.columns import Action, Col

log = logging.getLogger(__name__)

PAIR_CHUNK: Final = 65_536


class EmbedFeature:
    """Names of the embedding-derived features."""

    COMPONENT: Final = "emb_pc_{}"
    CLUSTER: Final = "emb_cluster"
    DISTANCE: Final = "emb_dist_{}"
    TASTE_COSINE: Final = "taste_cosine"
    TEXT_KNN: Final = "text_knn"
    CLUSTER_LIFT: Final = "text_cluster_lift"
    CLUSTER_VIEWS: Final = "text_cluster_views"
    ALS_SCORE: Final = "als_score"


def component_names(count: int) -> tuple[str, ...]:
    """Column names of ``count`` principal components."""
    return tuple(EmbedFeature.COMPONENT.format(i) for i in range(count))


def distance_names(count: int) -> tuple[str, ...]:
    """Column names of the distances to ``count`` cluster centres."""
    return tuple(EmbedFeature.DISTANCE.format(i) for i in range(count))


def post_embedding_features(
    embeddings: PostEmbeddings, components: int = 5, clusters: int = 15, seed: int = 0
) -> pl.DataFrame:
    """Per post: principal components, KMeans cluster and distance to each cluster centre (all float32).

    Args:
        embeddings: The catalog's vectors.
        components: Principal components kept (fewer when there are fewer posts or dimensions).
        clusters: KMeans clusters (fewer when there are fewer posts).
        seed: Seed of PCA and KMeans, so a rebuild gives the same features.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    vectors = embeddings.vectors
    kept = max(1, min(components, *vectors.shape))
    reduced = PCA(n_components=kept, random_state=seed).fit_transform(vectors).astype(np.float32)
    kmeans = KMeans(n_clusters=max(1, min(clusters, vectors.shape[0])), n_init=4, random_state=seed).fit(vectors)
    distances = kmeans.transform(vectors).astype(np.float32)
    return pl.DataFrame(
        {
            Col.POST_ID: embeddings.post_ids,
            **dict(zip(component_names(kept), reduced.T, strict=True)),
            EmbedFeature.CLUSTER: kmeans.labels_.astype(np.float32),
            **dict(zip(distance_names(distances.shape[1]), distances.T, strict=True)),
        }
    )


def post_matrix(features: pl.DataFrame, post_ids: npt.ArrayLike) -> FloatMatrix:
    """The feature columns (all but post_id) as a float32 matrix whose rows follow ``post_ids``; unknown posts NaN."""
    wanted = pl.DataFrame({Col.POST_ID: np.asarray(post_ids, dtype=np.int32)})
    joined = wanted.join(features.with_columns(pl.col(Col.POST_ID).cast(pl.Int32)), on=Col.POST_ID, how="left")
    values = joined.drop(Col.POST_ID).cast(pl.Float32).to_numpy()
    return np.ascontiguousarray(values, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class PostMixtures:
    """User vectors kept as what they are made of: each is a weighted sum of post vectors, normalised to length 1.

    The like weights take a fraction of the dense vectors' memory, and a block of users' vectors is a sparse product
    away when scoring asks for it. Each row is computed on its own, so a block's vectors are the same numbers the
    whole matrix would hold.

    Attributes:
        weights: (users x posts) CSR of each user's weight on each post.
        basis: (posts x dim) float32 post vectors.
    """

    weights: sp.csr_matrix
    basis: FloatMatrix

    @property
    def shape(self) -> tuple[int, int]:
        """(users, dim), as the dense matrix would have."""
        return self.weights.shape[0], self.basis.shape[1]

    def take(self, positions: npt.NDArray[np.int64]) -> FloatMatrix:
        """The normalised vectors of the users at ``positions`` (repeats allowed), float32."""
        # Training rows name each user many times: each distinct user's vector is computed once.
        distinct, inverse = np.unique(positions, return_inverse=True)
        vectors = unit_rows(np.asarray(self.weights[distinct] @ self.basis, dtype=np.float32))
        return vectors[inverse]


UserVectors = FloatMatrix | PostMixtures


def take_rows(vectors: UserVectors, positions: npt.NDArray[np.int64]) -> FloatMatrix:
    """Rows ``positions`` of a dense matrix or of :class:`PostMixtures`, as a dense float32 matrix."""
    if isinstance(vectors, PostMixtures):
        return vectors.take(positions)
    rows: FloatMatrix = vectors[positions]
    return rows


@dataclass(frozen=True, slots=True)
class UserPostSpace:
    """Users and posts as vectors of one space; a user-post score is the dot product of their vectors.

    Attributes:
        name: The feature this space's score is.
        user_ids: Sorted ids of the users with a vector; any other user scores 0 against every post.
        user_vectors: (users x dim) float32, dense or as :class:`PostMixtures`.
        post_ids: Sorted ids of the posts with a vector; any other post scores 0.
        post_vectors: (posts x dim) float32.
    """

    name: str
    user_ids: IdArray
    user_vectors: UserVectors
    post_ids: IdArray
    post_vectors: FloatMatrix

    def user_rows(self, user_ids: npt.ArrayLike) -> FloatMatrix:
        """Vectors of the given users, zero for users without one."""
        return _rows(self.user_ids, self.user_vectors, user_ids)

    def post_rows(self, post_ids: npt.ArrayLike) -> FloatMatrix:
        """Vectors of the given posts, zero for posts without one."""
        return _rows(self.post_ids, self.post_vectors, post_ids)

    def score_block(self, user_ids: npt.ArrayLike, post_ids: npt.ArrayLike | None = None) -> FloatMatrix:
        """(users x posts) float32 scores; posts default to :attr:`post_ids`, in that order."""
        posts = self.post_vectors if post_ids is None else self.post_rows(post_ids)
        block: FloatMatrix = self.user_rows(user_ids) @ posts.T
        return block

    def score_blocks(
        self, user_ids: npt.ArrayLike, block_users: int = 4096, post_ids: npt.ArrayLike | None = None
    ) -> Iterator[tuple[IdArray, FloatMatrix]]:
        """(user ids of the block, scores of the block) for consecutive blocks of ``block_users`` users."""
        users = np.asarray(user_ids, dtype=np.int32)
        for start in range(0, users.size, block_users):
            chunk = users[start : start + block_users]
            yield chunk, self.score_block(chunk, post_ids)

    def score_pairs(self, user_ids: npt.ArrayLike, post_ids: npt.ArrayLike, chunk: int = PAIR_CHUNK) -> FloatMatrix:
        """Score of each (user, post) pair, float32, computed in chunks to bound memory."""
        users, posts = np.asarray(user_ids), np.asarray(post_ids)
        scores = np.empty(users.size, dtype=np.float32)
        for start in range(0, users.size, chunk):
            part = slice(start, start + chunk)
            scores[part] = np.einsum("ij,ij->i", self.user_rows(users[part]), self.post_rows(posts[part]))
        return scores


def _rows(sorted_ids: IdArray, vectors: UserVectors, wanted: npt.ArrayLike) -> FloatMatrix:
    ids = np.asarray(wanted, dtype=np.int64)
    rows = np.zeros((ids.size, vectors.shape[1]), dtype=np.float32)
    positions, known = positions_or_last(sorted_ids, ids)
    rows[known] = take_rows(vectors, positions[known])
    return rows


def likes_before(likes: pl.DataFrame, cutoff: datetime) -> pl.DataFrame:
    """Like rows strictly before the cutoff (view rows dropped when the frame has an action column)."""
    earlier = likes.filter(pl.col(Col.TIMESTAMP) < cutoff)
    return earlier.filter(pl.col(Col.ACTION) == Action.LIKE) if Col.ACTION in likes.columns else earlier


def taste_space(
    likes: pl.DataFrame, embeddings: PostEmbeddings, cutoff: datetime, half_life_days: float = 30.0
) -> UserPostSpace:
    """Each user's taste: the time-decayed mean embedding of the posts liked before the cutoff, normalised.

    A like ``age`` days before the cutoff weighs ``0.5 ** (age / half_life_days)``. The score is the cosine between
    taste and post (post vectors are normalised); users without a like before the cutoff score 0. The tastes are
    kept as :class:`PostMixtures` of the like weights, not as a dense matrix.

    Args:
        likes: Like rows (user_id, post_id, timestamp); rows at or after the cutoff are ignored.
        embeddings: The catalog's vectors; likes of posts outside it are ignored.
        cutoff: Only likes strictly before it count.
        half_life_days: Age at which a like counts half as much as one at the cutoff.
    """
    known = likes_before(likes, cutoff).join(
        pl.DataFrame({Col.POST_ID: embeddings.post_ids}), on=Col.POST_ID, how="semi"
    )
    user_ids = np.unique(known[Col.USER_ID].to_numpy()).astype(np.int32)
    weights = _decay_weights(known[Col.TIMESTAMP], cutoff, half_life_days)
    matrix = _sparse(known, user_ids, embeddings.post_ids, weights)
    tastes = PostMixtures(matrix, embeddings.vectors)
    return UserPostSpace(EmbedFeature.TASTE_COSINE, user_ids, tastes, embeddings.post_ids, embeddings.vectors)


# Text neighbours kept per post by the text kNN: enough for a sub-topic's posts, few enough to stay sparse.
TEXT_NEIGHBOURS: Final = 50
# Rows of the post x post cosine computed at once when pruning it (1,024 x 7,023 float32: 29 MB).
_SIMILARITY_ROWS: Final = 1024
# Distinct users whose text kNN rows are computed at once for pairs (1,024 x 7,023 float32: 29 MB).
_PAIR_USERS: Final = 1024


@dataclass(frozen=True, slots=True)
class TextNeighbours:
    """The text kNN: each user's liked posts' (time-decayed) mean cosine to a post among its nearest by text.

    The taste cosine compares a post with the mean of a user's liked posts, which blurs a user who likes several
    sub-topics into their average; here each liked post votes for its own text neighbours, so each sub-topic keeps
    its own.

    Attributes:
        name: The feature this score is.
        user_ids: Sorted ids of the users with a like; any other user scores 0.
        weights: (users x posts) CSR of each user's like weights, rows summing to 1.
        post_ids: Sorted ids of the posts, the columns of ``weights`` and ``similar``.
        similar: (posts x posts) CSR: each post's :data:`TEXT_NEIGHBOURS` nearest posts by cosine (positive only).
    """

    name: str
    user_ids: IdArray
    weights: sp.csr_matrix
    post_ids: IdArray
    similar: sp.csr_matrix

    def score_block(self, user_ids: npt.ArrayLike, post_ids: npt.ArrayLike | None = None) -> FloatMatrix:
        """(users x posts) float32 scores; posts default to :attr:`post_ids`, in that order."""
        ids = np.asarray(user_ids, dtype=np.int64)
        positions, known = positions_or_last(self.user_ids, ids)
        if self.user_ids.size:
            block = np.asarray((self.weights[positions] @ self.similar).toarray(), dtype=np.float32)
            block[~known] = 0.0
        else:  # e.g. a shard none of whose users liked anything
            block = np.zeros((ids.size, self.post_ids.size), dtype=np.float32)
        if post_ids is None:
            return block
        columns, known_post = positions_or_last(self.post_ids, np.asarray(post_ids))
        picked: FloatMatrix = block[:, columns]
        picked[:, ~known_post] = 0.0
        return picked

    def score_pairs(self, user_ids: npt.ArrayLike, post_ids: npt.ArrayLike) -> FloatMatrix:
        """Score of each (user, post) pair, float32, computed per block of distinct users to bound memory."""
        users, posts = np.asarray(user_ids), np.asarray(post_ids)
        columns, known_post = positions_or_last(self.post_ids, posts)
        scores = np.zeros(users.size, dtype=np.float32)
        for rows, distinct, local in by_owner_blocks(users, _PAIR_USERS):
            scores[rows] = self.score_block(distinct)[local, columns[rows]]
        scores[~known_post] = 0.0
        return scores


# A user x post score of the test model: a vector space's dot product or the text kNN.
ScoreSpace = UserPostSpace | TextNeighbours


def pruned_text_similarity(vectors: FloatMatrix, neighbours: int = TEXT_NEIGHBOURS) -> sp.csr_matrix:
    """(posts x posts) CSR of each post's ``neighbours`` highest positive cosines to other posts (``vectors``
    normalised), row by row."""
    count = vectors.shape[0]
    kept = min(neighbours, count - 1)
    rows, cols, values = [], [], []
    for start in range(0, count, _SIMILARITY_ROWS):
        block = vectors[start : start + _SIMILARITY_ROWS] @ vectors.T
        own = np.arange(block.shape[0])
        block[own, own + start] = -np.inf  # a post is not its own neighbour
        if kept <= 0:
            continue
        top = np.argpartition(-block, kept - 1, axis=1)[:, :kept]
        top_values = np.take_along_axis(block, top, axis=1)
        positive = top_values > 0
        rows.append(np.repeat(own + start, kept)[positive.ravel()])
        cols.append(top[positive])
        values.append(top_values[positive])
    if not rows:
        return sp.csr_matrix((count, count), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(count, count), dtype=np.float32
    )


def text_neighbours(
    taste: UserPostSpace, embeddings: PostEmbeddings, neighbours: int = TEXT_NEIGHBOURS
) -> TextNeighbours:
    """The text kNN of the users of ``taste``, from its like weights (normalised per user).

    Without the pruning to ``neighbours`` it would be the taste's own direction (a weighted sum of cosines is the
    cosine to the weighted sum); the pruning is what keeps each liked post's vote local to its sub-topic.
    """
    mixtures = taste.user_vectors
    if not isinstance(mixtures, PostMixtures):
        raise TypeError("the text kNN needs the taste's like weights")
    totals = np.asarray(mixtures.weights.sum(axis=1)).ravel()
    scale = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0).astype(np.float32))
    return TextNeighbours(
        EmbedFeature.TEXT_KNN,
        taste.user_ids,
        (scale @ mixtures.weights).tocsr(),
        embeddings.post_ids,
        pruned_text_similarity(embeddings.vectors, neighbours),
    )


def _decay_weights(timestamps: pl.Series, cutoff: datetime, half_life_days: float) -> npt.NDArray[np.float32]:
    age_days = (pl.lit(cutoff) - timestamps).dt.total_microseconds() / MICROSECONDS_PER_DAY
    ages = timestamps.to_frame().select(age_days).to_series().to_numpy()
    return np.power(0.5, ages / half_life_days).astype(np.float32)


def _sparse(
    pairs: pl.DataFrame, user_ids: IdArray, post_ids: IdArray, values: npt.NDArray[np.float32]
) -> sp.csr_matrix:
    rows = id_positions(user_ids, pairs[Col.USER_ID].to_numpy(), "user")
    cols = id_positions(post_ids, pairs[Col.POST_ID].to_numpy(), "post")
    # Duplicates are summed: a post liked twice counts twice.
    return sp.csr_matrix((values, (rows, cols)), shape=(user_ids.size, post_ids.size), dtype=np.float32)


def unit_rows(vectors: FloatMatrix) -> FloatMatrix:
    """Each row scaled to length 1; a zero row stays zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: FloatMatrix = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


def als_space(
    likes: pl.DataFrame,
    cutoff: datetime,
    user_ids: npt.ArrayLike,
    post_ids: npt.ArrayLike,
    factors: int = 32,
    regularization: float = 0.01,
    seed: int = 0,
    num_threads: int = 0,
    alpha: float = 1.0,
) -> UserPostSpace:
    """Implicit-ALS factors of the user x post like matrix before the cutoff; the score is their dot product.

    Args:
        likes: Like rows (user_id, post_id, timestamp); rows at or after the cutoff are ignored.
        cutoff: Only likes strictly before it count.
        user_ids: The fixed user set (rows of the matrix); users without a like get zero factors.
        post_ids: The catalog (columns); likes of other posts are ignored.
        factors: Latent dimensions.
        regularization: L2 penalty on the factors.
        seed: Seed of the factor initialisation, so a rebuild gives the same scores.
        num_threads: implicit's worker threads (0: one per core).
        alpha: Confidence of a like (implicit's ``alpha``).
    """
    from implicit.cpu.als import AlternatingLeastSquares

    users, posts = np.unique(np.asarray(user_ids, dtype=np.int32)), np.unique(np.asarray(post_ids, dtype=np.int32))
    # One 1 per (user, post) liked, repeats and unknown ids dropped.
    indptr, columns = pairs_csr(users, posts, likes_before(likes, cutoff))
    ones = np.ones(columns.size, dtype=np.float32)
    matrix = sp.csr_matrix((ones, columns.astype(np.int32), indptr), shape=(users.size, posts.size))
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; a BLAS pool on top only thrashes
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=15,
            random_state=seed,
            num_threads=num_threads,
        )
        model.fit(matrix, show_progress=False)
    user_factors = np.asarray(model.user_factors, dtype=np.float32)
    user_factors[np.diff(matrix.indptr) == 0] = 0.0  # no like yet: no evidence of taste, not a random one
    log.info("als factors: users=%d posts=%d likes=%d factors=%d", users.size, posts.size, matrix.nnz, factors)
    return UserPostSpace(EmbedFeature.ALS_SCORE, users, user_factors, posts, np.asarray(model.item_factors, np.float32))


@dataclass(frozen=True, slots=True)
class EmbedParams:
    """Settings of the embedding features, saved with the model that uses them.

    Attributes:
        components: Principal components of the post embedding kept as features.
        clusters: KMeans clusters of the post embeddings.
        half_life_days: Age at which a like counts half in a user's taste.
        seed: Seed of PCA, KMeans and (in the collaborative features) ALS.
        method: How the post vectors are made, one of ``EMBEDDING_METHODS`` (a rescore embeds the same way).
        nn_feature: Whether the sequence model's score is a feature (``batch.pipeline.nn_feature``).
        post_columns: Whether the post's components, cluster and distances are columns of ``test``. Off: 21 columns
            that tell one post from another let the trees learn which posts the label window liked, which the held-out
            weeks do not repeat; over the world family they cost ``test`` against ``control`` (bench/RESULTS.md).
        text_neighbours: Nearest posts by text kept per post by the text kNN column (:class:`TextNeighbours`); 0
            leaves the column out.
        topic_clusters: Text clusters over the catalog, within topics, of the cluster lift columns
            (:mod:`batch.pipeline.cluster_lift`); 0 leaves the columns out.
        coview_dim: Dimensions of the co-view vectors clustered beside the text vectors (0: text alone), the first
            this many of those the collaborative step makes (``CollabParams.coview_dim``). The world
            writes a sub-topic in several vocabularies; who was shown a post tells them apart far better (bench/
            RESULTS.md, "Clusters of text and co-views").
    """

    components: int = 5
    clusters: int = 15
    half_life_days: float = 30.0
    seed: int = 0
    method: str = AUTO
    nn_feature: bool = True
    post_columns: bool = False
    text_neighbours: int = TEXT_NEIGHBOURS
    topic_clusters: int = 80
    coview_dim: int = 64

    @classmethod
    def from_saved(cls, saved: Mapping[str, object]) -> EmbedParams:
        """The settings a version saved; a version saved before ``post_columns`` existed had the post columns, and
        one saved before ``text_neighbours`` had no text kNN, one before ``topic_clusters`` no cluster lifts and one
        before ``coview_dim`` clustered by text alone."""
        return cls(**{"post_columns": True, "text_neighbours": 0, "topic_clusters": 0, "coview_dim": 0, **saved})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class EmbeddingFeatureSet:
    """The embedding-derived features for one cutoff, ready to be added to the ``control`` features.

    Attributes:
        info: How the post vectors were made (for the version's metadata).
        post_ids: Sorted post ids; row i of ``posts`` is ``post_ids[i]``.
        posts: (posts x ``post_names``) float32: components, cluster, distances.
        post_names: Names of the columns of ``posts``.
        spaces: The user x post scores (taste cosine, text kNN), one feature each.
    """

    info: EmbeddingInfo
    post_ids: IdArray
    posts: FloatMatrix
    post_names: tuple[str, ...]
    spaces: tuple[ScoreSpace, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in the order of the columns of :meth:`pair_matrix` and :meth:`fill_block`."""
        return (*self.post_names, *(space.name for space in self.spaces))

    def pair_matrix(self, user_ids: npt.ArrayLike, post_ids: npt.ArrayLike) -> FloatMatrix:
        """(pairs x :attr:`names`) float32 for arbitrary (user, post) pairs, e.g. training rows."""
        posts = np.asarray(post_ids)
        scores = [space.score_pairs(user_ids, posts)[:, None] for space in self.spaces]
        return np.hstack([self.post_values(posts), *scores]).astype(np.float32, copy=False)

    def fill_block(self, out: FloatMatrix, user_ids: npt.ArrayLike, post_ids: npt.ArrayLike) -> None:
        """Write the features of every (user, post) of a block into ``out`` (users * posts x :attr:`names`).

        Rows are user-major, (user 0, post 0), (user 0, post 1), ..., as in
        ``batch.pipeline.features.block_matrix``; ``out`` may be a column slice of a larger column-major matrix.
        """
        users, posts = np.asarray(user_ids), np.asarray(post_ids)
        post_values = self.post_values(posts)
        for column in range(len(self.post_names)):
            out[:, column].reshape(users.size, posts.size)[:] = post_values[None, :, column]
        for offset, space in enumerate(self.spaces, start=len(self.post_names)):
            out[:, offset].reshape(users.size, posts.size)[:] = space.score_block(users, posts)

    def post_values(self, post_ids: npt.ArrayLike) -> FloatMatrix:
        """(posts x :attr:`post_names`) rows following ``post_ids``; NaN (missing) for a post not in the set."""
        values = _rows(self.post_ids, self.posts, post_ids)
        ids = np.asarray(post_ids)
        unknown = ~np.isin(ids, self.post_ids)
        values[unknown] = np.nan
        return values


def build_embedding_features(
    embeddings: PostEmbeddings,
    likes: pl.DataFrame,
    cutoff: datetime,
    params: EmbedParams | None = None,
) -> EmbeddingFeatureSet:
    """Post features and taste cosines for one cutoff.

    Args:
        embeddings: The catalog's vectors, from :func:`batch.pipeline.embed.embed_posts`.
        likes: Like rows (user_id, post_id, timestamp); only those before the cutoff are used.
        cutoff: Nothing at or after it is seen.
        params: Feature settings; the defaults when omitted.
    """
    params = params or EmbedParams()
    taste = taste_space(likes, embeddings, cutoff, params.half_life_days)
    frame = pl.DataFrame({Col.POST_ID: embeddings.post_ids})  # no post columns unless asked for
    if params.post_columns:
        frame = post_embedding_features(embeddings, params.components, params.clusters, params.seed)
    names = tuple(name for name in frame.columns if name != Col.POST_ID)
    return EmbeddingFeatureSet(
        info=embeddings.info,
        post_ids=embeddings.post_ids,
        posts=post_matrix(frame, embeddings.post_ids),
        post_names=names,
        spaces=(taste, text_neighbours(taste, embeddings, params.text_neighbours))
        if params.text_neighbours
        else (taste,),
    )
