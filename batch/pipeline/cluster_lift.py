"""The text cluster lifts of the ``test`` model: how much more, or less, of one text cluster than of its topic a
user was shown, and liked, before the cutoff.

The same two lifts as the co-view clusters that both models read (:mod:`batch.pipeline.coview_clusters`), over
clusters made from each post's text beside its co-view vector: a sub-topic written in different words still reaches
the same users, and text splits what the audiences alone blur. What ``test`` adds to ``control`` here is the text.
Two columns, each a logarithm that is 0 where there is no evidence:

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

import numpy as np
import numpy.typing as npt

from batch.pipeline.coview_clusters import (
    ClusterArray,
    cluster_topics,
    coview_vectors,
    everyone_shares,
    like_lift,
    per_cluster,
    same_topic,
    topic_clusters,
    view_lift,
)
from batch.pipeline.embed import FloatMatrix, PostEmbeddings
from batch.pipeline.embed_features import EmbeddingFeatureSet, EmbedFeature, EmbedParams, UserPostSpace, unit_rows
from batch.pipeline.features import USER_TOPIC_FEATURES, Feature, FeatureSet
from batch.ranking.positions import positions_or_last


@dataclass(frozen=True, slots=True)
class ClusterCounts:
    """Each user's views and likes in each text cluster at one cutoff.

    Attributes:
        labels: Cluster of each post; posts follow the feature set's.
        topics: Topic code of each cluster.
        views: (users x clusters) posts the user was shown.
        likes: (users x clusters) posts the user liked.
    """

    labels: ClusterArray
    topics: npt.NDArray[np.int64]
    views: FloatMatrix
    likes: FloatMatrix

    @property
    def one_hot(self) -> FloatMatrix:
        """(posts x clusters) float32, 1 on each post's cluster: the post side of the spaces."""
        matrix = np.zeros((self.labels.size, self.topics.size), dtype=np.float32)
        matrix[np.arange(self.labels.size), self.labels] = 1.0
        return matrix


def cluster_counts(
    features: FeatureSet, embeddings: PostEmbeddings, clusters: int, seed: int, coviews: FloatMatrix | None = None
) -> ClusterCounts:
    """Cluster the catalog by text (and co-views) within topics and count every user's views and likes per cluster.

    Args:
        features: The base features at the cutoff: their views and likes are counted.
        embeddings: The catalog's vectors; a post without one is clustered as a zero vector of its topic.
        clusters: About this many clusters over the catalog.
        seed: KMeans' and the SVD's seed, so a rebuild gives the same clusters.
        coviews: (posts x dim) co-view vectors (:func:`batch.pipeline.coview_clusters.coview_vectors`) put beside
            each post's text vector before clustering; None clusters by text alone.
    """
    rows, known = positions_or_last(embeddings.post_ids, features.post_ids)
    vectors = np.where(known[:, None], embeddings.vectors[rows], 0.0).astype(np.float32)
    if coviews is not None:
        vectors = np.hstack([vectors, coviews])
    labels = topic_clusters(vectors, features.post_topics.astype(np.int64), clusters, seed)
    topics = cluster_topics(labels, features.post_topics.astype(np.int64))
    views = per_cluster(features.viewed_indptr, features.viewed_posts, labels, topics.size)
    likes = per_cluster(features.liked_indptr, features.liked_posts, labels, topics.size)
    return ClusterCounts(labels, topics, views, likes)


def text_like_lift(counts: ClusterCounts, features: FeatureSet) -> FloatMatrix:
    """(users x clusters) :func:`batch.pipeline.coview_clusters.like_lift` towards each user's like rate in the
    cluster's topic as the base features hold it (``user_topic_like_rate``)."""
    topic_rate = features.user_topics[:, counts.topics, USER_TOPIC_FEATURES.index(Feature.TOPIC_LIKE_RATE)]
    return like_lift(counts.likes, counts.views, topic_rate)


def text_view_lift(counts: ClusterCounts) -> FloatMatrix:
    """(users x clusters) :func:`batch.pipeline.coview_clusters.view_lift` against everyone's shares."""
    together = same_topic(counts.topics)
    return view_lift(counts.views, together, everyone_shares(counts.views, together))


def cluster_spaces(
    features: FeatureSet, embeddings: PostEmbeddings, clusters: int, seed: int, coviews: FloatMatrix | None = None
) -> tuple[UserPostSpace, UserPostSpace]:
    """The like lift and the view lift of every user of ``features`` in every text cluster, as spaces whose post
    vectors are one-hot on the post's cluster (:func:`cluster_counts` for the arguments)."""
    counts = cluster_counts(features, embeddings, clusters, seed, coviews)
    users, posts, one_hot = features.user_ids, features.post_ids, counts.one_hot
    return (
        UserPostSpace(EmbedFeature.CLUSTER_LIFT, users, text_like_lift(counts, features), posts, one_hot),
        UserPostSpace(EmbedFeature.CLUSTER_VIEWS, users, text_view_lift(counts), posts, one_hot),
    )


def with_cluster_lifts(
    extra: EmbeddingFeatureSet,
    features: FeatureSet,
    embeddings: PostEmbeddings,
    params: EmbedParams,
    coviews: FloatMatrix | None = None,
) -> EmbeddingFeatureSet:
    """The embedding features plus the cluster lifts at the same cutoff, unless ``params.topic_clusters`` is 0.

    ``coviews``: the cutoff's co-view vectors when they were made already (the collaborative features' clusters
    are made from them, :class:`batch.pipeline.coview_clusters.CoviewClusters`); their first
    ``params.coview_dim`` dimensions go beside the text. None makes them here.
    """
    if not params.topic_clusters:
        return extra
    beside = None
    if params.coview_dim:
        made = coviews if coviews is not None else coview_vectors(features, params.coview_dim, params.seed)
        beside = unit_rows(made[:, : params.coview_dim])
    spaces = cluster_spaces(features, embeddings, params.topic_clusters, params.seed, beside)
    return replace(extra, spaces=(*extra.spaces, *spaces))
