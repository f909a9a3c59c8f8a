"""Co-view clusters, read by both models: how much more, or less, of one sub-topic than of its topic a user was
shown, and liked, before the cutoff.

Each topic's posts are clustered (KMeans) by who was shown them: a truncated SVD of the posts x users views, each
user weighing 1 (:func:`coview_vectors`). What a feed shows a user follows their interest in sub-topics that the
topic label does not name, so posts of one sub-topic reach the same users whatever their words: on the text world
(seed 7, 80 clusters) 0.97 of the posts sit in their cluster's majority sub-topic, against 0.70 for TF-IDF text
clusters. The clusters are collaborative (no text is read), so ``control`` has them and ``test``'s edge stays its
text (:mod:`batch.pipeline.cluster_lift` clusters by text beside these vectors).

Two columns per (user, post), each a logarithm that is 0 where there is no evidence, both read from the user's
liked and shown posts only, so a worker shard, a one-user rescore and a training row at its own moment score them
from the post side alone (:class:`CoviewClusters`):

- the view lift: the post's cluster's share of the user's views in its topic, shrunk towards that share over all
  users, over the latter;
- the like lift: the user's like rate in the cluster, shrunk towards their rate in its topic, over the latter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from batch.pipeline.embed_features import unit_rows
from batch.pipeline.features import USER_PRIOR_VIEWS, USER_TOPIC_PRIOR_VIEWS, FeatureSet, FloatArray
from batch.pipeline.row_history import ShownRows
from batch.ranking.positions import IndexArray, PositionArray, csr_entries

# Views that weigh as much as what a cluster's rate or share is shrunk towards (as for the topic's own like rate).
CLUSTER_PRIOR_VIEWS: Final = 10.0
# A topic rate below this is treated as this, so the logarithm stays finite where nothing was ever liked.
MIN_RATE: Final = 1e-6

ClusterArray = npt.NDArray[np.int64]


def topic_clusters(vectors: FloatArray, topics: npt.NDArray[np.int64], clusters: int, seed: int) -> ClusterArray:
    """Cluster of each post: KMeans on the vectors of each topic's posts, about ``clusters`` in all, shared out in
    proportion to the topics' post counts (at least one each); numbered across topics, topic by topic. Each topic's
    vectors are centred and normalised first, so what the topic's posts share does not dominate the distances."""
    from sklearn.cluster import KMeans

    labels = np.empty(topics.size, dtype=np.int64)
    first = 0
    for topic in np.unique(topics):
        members = np.flatnonzero(topics == topic)
        # No more clusters than distinct points: posts nobody was shown share one zero co-view vector.
        distinct = np.unique(vectors[members], axis=0).shape[0]
        count = int(max(1, min(distinct, round(clusters * members.size / topics.size))))
        if count == 1:
            labels[members] = first
        else:
            fitted = KMeans(n_clusters=count, n_init=4, random_state=seed).fit(_centred(vectors[members]))
            labels[members] = first + fitted.labels_
        first += count
    return labels


def _centred(vectors: FloatArray) -> FloatArray:
    return unit_rows(vectors - vectors.mean(axis=0))


def coview_vectors(features: FeatureSet, dim: int, seed: int) -> FloatArray:
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


def per_cluster(
    indptr: IndexArray, posts: PositionArray, labels: ClusterArray, count: int, rows: IndexArray | None = None
) -> FloatArray:
    """(rows x clusters) float32 counts of each CSR row's posts in each cluster: the rows at ``rows`` positions, or
    every row (None)."""
    if rows is None:
        # Every row: a sparse product over the CSR's own arrays, with no per-entry index arrays (at full scale the
        # feed's 61 M views would take 0.5 GB per int64 array).
        matrix = sp.csr_matrix(
            (np.ones(posts.size, dtype=np.float32), posts, indptr), shape=(indptr.size - 1, labels.size)
        )
        one_hot = sp.csr_matrix(
            (np.ones(labels.size, dtype=np.float32), (np.arange(labels.size), labels)), shape=(labels.size, count)
        )
        whole: FloatArray = np.asarray((matrix @ one_hot).toarray(), dtype=np.float32)
        return whole
    owners, columns = csr_entries(indptr, posts, rows)
    flat = np.bincount(owners * count + labels[columns], minlength=rows.size * count)
    counts: FloatArray = flat.reshape(rows.size, count).astype(np.float32)
    return counts


def same_topic(topics: npt.NDArray[np.int64]) -> FloatArray:
    """(clusters x clusters) 1 where two clusters belong to one topic: counts @ it sums each cluster's topic."""
    matrix: FloatArray = (topics[:, None] == topics[None, :]).astype(np.float32)
    return matrix


def cluster_topics(labels: ClusterArray, post_topics: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Topic code of each cluster (numbered 0..max label), from each post's cluster and topic."""
    topics = np.zeros(int(labels.max()) + 1 if labels.size else 0, dtype=np.int64)
    topics[labels] = post_topics
    return topics


def everyone_shares(views: FloatArray, together: FloatArray) -> FloatArray:
    """Each cluster's share of its topic's views over all users (rows of ``views``; ``together``: :func:`same_topic`);
    each cluster starts with one view, so that a topic nobody was shown has even shares."""
    totals = views.sum(axis=0)
    shares: FloatArray = ((totals + 1.0) / (totals @ together + together.sum(axis=0))).astype(np.float32)
    return shares


def view_lift(views: FloatArray, together: FloatArray, everyone: FloatArray) -> FloatArray:
    """(users x clusters) log of the cluster's share of each user's views in its topic, shrunk towards the share
    over all users (``everyone``), over that share: how much more of the sub-topic the feed shows this user."""
    topic_views = views @ together
    shrunk = (views + CLUSTER_PRIOR_VIEWS * everyone) / (topic_views + CLUSTER_PRIOR_VIEWS)
    lift: FloatArray = np.log(shrunk / everyone).astype(np.float32)
    return lift


def like_lift(likes: FloatArray, views: FloatArray, topic_rate: FloatArray) -> FloatArray:
    """(users x clusters) log of each user's like rate in the cluster, shrunk towards their rate in its topic
    (``topic_rate``, per user and cluster), over that rate: taste for the sub-topic beyond the topic's, with what
    the feed showed as the denominator."""
    topic_rate = np.maximum(topic_rate, MIN_RATE)
    shrunk = (likes + CLUSTER_PRIOR_VIEWS * topic_rate) / (views + CLUSTER_PRIOR_VIEWS)
    lift: FloatArray = np.log(shrunk / topic_rate).astype(np.float32)
    return lift


@dataclass(frozen=True, slots=True)
class CoviewClusters:
    """The post side of the co-view cluster columns at one cutoff.

    Attributes:
        labels: (posts,) cluster of each post; posts follow the feature set's.
        topics: (clusters,) topic code of each cluster.
        everyone: (clusters,) float32 each cluster's share of its topic's views over all users at the cutoff.
        like_prior: The global like rate before the cutoff, which a user's topic rate is shrunk towards.
        vectors: (posts x dim) the co-view vectors the clusters were made from (the ``test`` model's text
            clusters read them too); not staged for workers, which need only the fields above.
    """

    labels: ClusterArray
    topics: npt.NDArray[np.int64]
    everyone: FloatArray
    like_prior: float
    vectors: FloatArray | None = None

    def lifts(self, rows: ShownRows, users: IndexArray) -> tuple[FloatArray, FloatArray]:
        """(users x clusters) like lift and view lift of the rows at ``users`` positions."""
        count = self.topics.size
        likes = per_cluster(rows.liked_indptr, rows.liked_posts, self.labels, count, users)
        views = per_cluster(rows.viewed_indptr, rows.viewed_posts, self.labels, count, users)
        together = same_topic(self.topics)
        # The user's topic rate as the base features smooth it: towards their own rate, itself towards everyone's.
        user_rate = (likes.sum(axis=1, keepdims=True) + USER_PRIOR_VIEWS * self.like_prior) / (
            views.sum(axis=1, keepdims=True) + USER_PRIOR_VIEWS
        )
        topic_rate = (likes @ together + USER_TOPIC_PRIOR_VIEWS * user_rate) / (
            views @ together + USER_TOPIC_PRIOR_VIEWS
        )
        return like_lift(likes, views, topic_rate), view_lift(views, together, self.everyone)

    def write_columns(self, rows: ShownRows, users: IndexArray, likes_out: FloatArray, views_out: FloatArray) -> None:
        """Write each (user, post)'s like lift and view lift, (users x posts), into the two outputs."""
        like, view = self.lifts(rows, users)
        likes_out[:] = like[:, self.labels]
        views_out[:] = view[:, self.labels]


def fit_coview_clusters(features: FeatureSet, clusters: int, dim: int, seed: int) -> CoviewClusters:
    """Cluster the catalog by co-views within topics at the feature set's cutoff, with everyone's view shares.

    Args:
        features: The base features at the cutoff: their views are clustered and counted.
        clusters: About this many clusters over the catalog.
        dim: Dimensions of the co-view vectors.
        seed: KMeans' and the SVD's seed, so a rebuild gives the same clusters.
    """
    topics = features.post_topics.astype(np.int64)
    vectors = coview_vectors(features, dim, seed)
    if vectors.shape[1]:
        labels = topic_clusters(vectors, topics, clusters, seed)
    else:
        # Too few users to tell posts apart: one cluster per topic, which says nothing beyond the topic columns.
        labels = np.unique(topics, return_inverse=True)[1].astype(np.int64)
    clustered = cluster_topics(labels, topics)
    views = per_cluster(features.viewed_indptr, features.viewed_posts, labels, clustered.size)
    everyone = everyone_shares(views, same_topic(clustered))
    return CoviewClusters(labels, clustered, everyone, features.like_prior, vectors)
