"""The text cluster lifts of the ``test`` model: how much more, or less, of one text cluster than of its topic a
user was shown, and liked, before the cutoff.

Each topic's posts are clustered by their text (KMeans on the embeddings) and, beside it, by who was shown them
(:func:`coview_vectors`): a sub-topic written in different words still reaches the same users. A cluster is a
sub-topic that the topic label does not name. Two columns, each a logarithm that is 0 where there is no evidence:

- the view lift (``text_cluster_views``): the cluster's share of the user's views in its topic, shrunk towards that
  share over all users, over the latter. What a feed shows a user follows their interest in a sub-topic, and the
  next weeks' feed follows the same interest: in the synthetic worlds knowing each user's sub-topic interests is
  worth more hitrate than knowing their sub-topic tastes (``bench/oracle_ceilings.py``);
- the like lift (``text_cluster_lift``): the user's like rate in the cluster, shrunk towards their like rate in the
  cluster's topic (the base feature ``user_topic_like_rate``), over the latter: taste for the sub-topic, with what
  the feed showed as the denominator (the text kNN and the taste cosine count likes only).

Each is a :class:`batch.pipeline.embed_features.UserPostSpace`: a user's vector holds their log lift in every
cluster and a post's vector is one-hot on its cluster, so blocks, pairs and shards score as any other space.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from batch.pipeline.embed import FloatMatrix, PostEmbeddings
from batch.pipeline.embed_features import EmbeddingFeatureSet, EmbedFeature, EmbedParams, UserPostSpace, unit_rows
from batch.pipeline.features import USER_TOPIC_FEATURES, Feature, FeatureSet
from batch.ranking.positions import positions_or_last

# Views that weigh as much as what a cluster's rate or share is shrunk towards (as for the topic's own like rate).
CLUSTER_PRIOR_VIEWS: Final = 10.0
# A topic rate below this is treated as this, so the logarithm stays finite where nothing was ever liked.
_MIN_RATE: Final = 1e-6

ClusterArray = npt.NDArray[np.int64]


def topic_text_clusters(vectors: FloatMatrix, topics: npt.NDArray[np.int64], clusters: int, seed: int) -> ClusterArray:
    """Cluster of each post: KMeans on the vectors of each topic's posts, about ``clusters`` in all, shared out in
    proportion to the topics' post counts (at least one each); numbered across topics, topic by topic. Each topic's
    vectors are centred and normalised first, so what the topic's posts share does not dominate the distances."""
    from sklearn.cluster import KMeans

    labels = np.empty(topics.size, dtype=np.int64)
    first = 0
    for topic in np.unique(topics):
        members = np.flatnonzero(topics == topic)
        count = int(max(1, min(members.size, round(clusters * members.size / topics.size))))
        if count == 1:
            labels[members] = first
        else:
            fitted = KMeans(n_clusters=count, n_init=4, random_state=seed).fit(_centred(vectors[members]))
            labels[members] = first + fitted.labels_
        first += count
    return labels


def _centred(vectors: FloatMatrix) -> FloatMatrix:
    return unit_rows(vectors - vectors.mean(axis=0))


def coview_vectors(features: FeatureSet, dim: int, seed: int) -> FloatMatrix:
    """(posts x at most ``dim``) unit vectors of who was shown each post before the cutoff: truncated SVD of the
    posts x users view matrix, each user's views weighing 1 in all. Posts shown to the same users point the same
    way; none when there are too few users or posts to reduce."""
    from sklearn.decomposition import TruncatedSVD

    n_users, n_posts = features.user_ids.size, features.post_ids.size
    kept = min(dim, n_posts - 1, n_users - 1)
    if kept < 1 or features.viewed_posts.size == 0:
        return np.zeros((n_posts, 0), dtype=np.float32)
    shown = np.diff(features.viewed_indptr)
    weights = np.repeat((1.0 / np.maximum(shown, 1)).astype(np.float32), shown)
    by_user = sp.csr_matrix((weights, features.viewed_posts, features.viewed_indptr), shape=(n_users, n_posts))
    # The transpose of a CSR matrix is a CSC matrix over the same arrays: the views are not copied.
    reduced = TruncatedSVD(n_components=kept, random_state=seed).fit_transform(by_user.T).astype(np.float32)
    return unit_rows(reduced)


def _per_cluster(indptr: npt.NDArray[np.int64], posts: npt.NDArray[np.int64], one_hot: sp.csr_matrix) -> FloatMatrix:
    """(users x clusters) counts of the CSR's posts in each cluster."""
    ones = np.ones(posts.size, dtype=np.float32)
    rows = sp.csr_matrix((ones, posts, indptr), shape=(indptr.size - 1, one_hot.shape[0]))
    counts: FloatMatrix = np.asarray((rows @ one_hot).toarray(), dtype=np.float32)
    return counts


@dataclass(frozen=True, slots=True)
class ClusterCounts:
    """Each user's views and likes in each text cluster at one cutoff.

    Attributes:
        one_hot: (posts x clusters) float32, 1 on each post's cluster; posts follow the feature set's.
        topics: Topic code of each cluster.
        views: (users x clusters) posts the user was shown.
        likes: (users x clusters) posts the user liked.
    """

    one_hot: FloatMatrix
    topics: npt.NDArray[np.int64]
    views: FloatMatrix
    likes: FloatMatrix


def cluster_counts(
    features: FeatureSet, embeddings: PostEmbeddings, clusters: int, seed: int, coview_dim: int = 0
) -> ClusterCounts:
    """Cluster the catalog by text (and co-views) within topics and count every user's views and likes per cluster.

    Args:
        features: The base features at the cutoff: their views and likes are counted.
        embeddings: The catalog's vectors; a post without one is clustered as a zero vector of its topic.
        clusters: About this many clusters over the catalog.
        seed: KMeans' and the SVD's seed, so a rebuild gives the same clusters.
        coview_dim: Dimensions of :func:`coview_vectors` put beside each post's text vector before clustering; 0
            clusters by text alone.
    """
    rows, known = positions_or_last(embeddings.post_ids, features.post_ids)
    vectors = np.where(known[:, None], embeddings.vectors[rows], 0.0).astype(np.float32)
    if coview_dim:
        vectors = np.hstack([vectors, coview_vectors(features, coview_dim, seed)])
    labels = topic_text_clusters(vectors, features.post_topics.astype(np.int64), clusters, seed)
    count = int(labels.max()) + 1 if labels.size else 0
    one_hot = sp.csr_matrix(
        (np.ones(labels.size, dtype=np.float32), (np.arange(labels.size), labels)), shape=(labels.size, count)
    )
    topics = np.zeros(count, dtype=np.int64)
    topics[labels] = features.post_topics
    views = _per_cluster(features.viewed_indptr, features.viewed_posts, one_hot)
    likes = _per_cluster(features.liked_indptr, features.liked_posts, one_hot)
    return ClusterCounts(one_hot.toarray(), topics, views, likes)


def like_lift(counts: ClusterCounts, features: FeatureSet) -> FloatMatrix:
    """(users x clusters) log of each user's like rate in the cluster, shrunk towards their rate in its topic, over
    that topic rate: taste for the sub-topic beyond the topic's, with what the feed showed as the denominator."""
    topic_rate = features.user_topics[:, counts.topics, USER_TOPIC_FEATURES.index(Feature.TOPIC_LIKE_RATE)]
    topic_rate = np.maximum(topic_rate, _MIN_RATE)
    shrunk = (counts.likes + CLUSTER_PRIOR_VIEWS * topic_rate) / (counts.views + CLUSTER_PRIOR_VIEWS)
    lift: FloatMatrix = np.log(shrunk / topic_rate).astype(np.float32)
    return lift


def view_lift(counts: ClusterCounts) -> FloatMatrix:
    """(users x clusters) log of the cluster's share of each user's views in its topic, shrunk towards the share
    over all users, over that share: how much more of the sub-topic the feed shows this user than others."""
    same_topic = (counts.topics[:, None] == counts.topics[None, :]).astype(np.float32)
    topic_views = counts.views @ same_topic
    totals = counts.views.sum(axis=0)
    clusters_in_topic = same_topic.sum(axis=0)
    # Each cluster starts with one view so that a topic nobody was shown has even shares.
    everyone = (totals + 1.0) / (totals @ same_topic + clusters_in_topic)
    shrunk = (counts.views + CLUSTER_PRIOR_VIEWS * everyone) / (topic_views + CLUSTER_PRIOR_VIEWS)
    lift: FloatMatrix = np.log(shrunk / everyone).astype(np.float32)
    return lift


def cluster_spaces(
    features: FeatureSet, embeddings: PostEmbeddings, clusters: int, seed: int, coview_dim: int = 0
) -> tuple[UserPostSpace, UserPostSpace]:
    """The like lift and the view lift of every user of ``features`` in every text cluster, as spaces whose post
    vectors are one-hot on the post's cluster (:func:`cluster_counts` for the arguments)."""
    counts = cluster_counts(features, embeddings, clusters, seed, coview_dim)
    users, posts = features.user_ids, features.post_ids
    return (
        UserPostSpace(EmbedFeature.CLUSTER_LIFT, users, like_lift(counts, features), posts, counts.one_hot),
        UserPostSpace(EmbedFeature.CLUSTER_VIEWS, users, view_lift(counts), posts, counts.one_hot),
    )


def with_cluster_lifts(
    extra: EmbeddingFeatureSet, features: FeatureSet, embeddings: PostEmbeddings, params: EmbedParams
) -> EmbeddingFeatureSet:
    """The embedding features plus the cluster lifts at the same cutoff, unless ``params.topic_clusters`` is 0."""
    if not params.topic_clusters:
        return extra
    spaces = cluster_spaces(features, embeddings, params.topic_clusters, params.seed, params.coview_dim)
    return replace(extra, spaces=(*extra.spaces, *spaces))
