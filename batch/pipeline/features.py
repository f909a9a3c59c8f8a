"""Features of the ``control`` model for a cutoff, as dense float32 arrays per user, per post and per user x topic.

Every categorical is encoded here as a number (ordinal codes by frequency, smoothed like rates), so training and
scoring hand CatBoost a plain float32 matrix: its own categorical hashing at predict time is far too slow to score
every user against every post. The arrays are laid out so that a scoring block (users x posts x features) is built
by broadcasting user rows and post rows and gathering user x topic rows by the post's topic index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypedDict

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from batch.pipeline.feed_counts import Agg, FeedCounts
from batch.ranking.positions import (
    BoolArray,
    Csr,
    IndexArray,
    PositionArray,
    csr_contains,
    csr_entries,
    id_positions,
    pairs_csr,
    positions_or_last,
)
from common.columns import Col
from common.errors import ArtifactMismatchError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]
DayArray = npt.NDArray[np.float64]

SECONDS_PER_DAY: Final = 86_400.0
MICROSECONDS_PER_DAY: Final = 86_400_000_000

# Pseudo-counts of the smoothed like rates: a rate from few views is pulled towards its parent's rate.
POST_PRIOR_VIEWS: Final = 50.0
USER_PRIOR_VIEWS: Final = 20.0
USER_TOPIC_PRIOR_VIEWS: Final = 10.0
MAX_CODES: Final = 1000
# Lists are computed once for the period after as_of; the time features of scoring are those of an evening (when
# most likes happen) on the last day of data.
SERVE_HOUR: Final = 20


class Feature:
    """Names of the model's features, in the order of the matrix columns."""

    AGE: Final = "age"
    GENDER: Final = "gender"
    EXP_GROUP: Final = "exp_group"
    COUNTRY: Final = "country_code"
    CITY: Final = "city_code"
    OS: Final = "os_code"
    SOURCE: Final = "source_code"
    USER_VIEWS: Final = "user_views"
    USER_LIKES: Final = "user_likes"
    USER_LIKE_RATE: Final = "user_like_rate"
    TOPIC: Final = "topic_code"
    TEXT_CHARS: Final = "text_chars"
    TEXT_WORDS: Final = "text_words"
    TFIDF_SUM: Final = "tfidf_sum"
    TFIDF_MAX: Final = "tfidf_max"
    TFIDF_MEAN: Final = "tfidf_mean"
    POST_VIEWS: Final = "post_views"
    POST_LIKES: Final = "post_likes"
    POST_LIKE_RATE: Final = "post_like_rate"
    POST_RECENT_VIEWS: Final = "post_recent_views"
    POST_RECENT_LIKE_RATE: Final = "post_recent_like_rate"
    TOPIC_VIEWS: Final = "user_topic_views"
    TOPIC_LIKES: Final = "user_topic_likes"
    TOPIC_LIKE_RATE: Final = "user_topic_like_rate"
    TOPIC_VIEW_SHARE: Final = "user_topic_view_share"
    HOUR: Final = "hour"
    WEEKDAY: Final = "weekday"
    MONTH: Final = "month"
    VIEWED_BEFORE: Final = "viewed_before"


USER_FEATURES: Final = (
    Feature.AGE,
    Feature.GENDER,
    Feature.EXP_GROUP,
    Feature.COUNTRY,
    Feature.CITY,
    Feature.OS,
    Feature.SOURCE,
    Feature.USER_VIEWS,
    Feature.USER_LIKES,
    Feature.USER_LIKE_RATE,
)
POST_FEATURES: Final = (
    Feature.TOPIC,
    Feature.TEXT_CHARS,
    Feature.TEXT_WORDS,
    Feature.TFIDF_SUM,
    Feature.TFIDF_MAX,
    Feature.TFIDF_MEAN,
    Feature.POST_VIEWS,
    Feature.POST_LIKES,
    Feature.POST_LIKE_RATE,
    Feature.POST_RECENT_VIEWS,
    Feature.POST_RECENT_LIKE_RATE,
)
USER_TOPIC_FEATURES: Final = (
    Feature.TOPIC_VIEWS,
    Feature.TOPIC_LIKES,
    Feature.TOPIC_LIKE_RATE,
    Feature.TOPIC_VIEW_SHARE,
)
TIME_FEATURES: Final = (Feature.HOUR, Feature.WEEKDAY, Feature.MONTH)
# The feed almost never shows a post twice, and a re-shown post is almost never liked: a post the user has already
# seen before the cutoff is a strong negative signal, known from data before the cutoff.
PAIR_FEATURES: Final = (Feature.VIEWED_BEFORE,)
FEATURE_NAMES: Final = (*USER_FEATURES, *POST_FEATURES, *USER_TOPIC_FEATURES, *TIME_FEATURES, *PAIR_FEATURES)

# Source column -> feature holding its ordinal code.
CODED_COLUMNS: Final = {
    Col.COUNTRY: Feature.COUNTRY,
    Col.CITY: Feature.CITY,
    Col.OS: Feature.OS,
    Col.SOURCE: Feature.SOURCE,
    Col.TOPIC: Feature.TOPIC,
}


@dataclass(frozen=True, slots=True)
class Encoders:
    """Ordinal codes of categorical values, fitted once and saved with the model so scoring codes match training.

    Attributes:
        values: Source column -> known values; a value's code is its position, an unknown value gets ``len``.
    """

    values: Mapping[str, tuple[str, ...]]

    def code(self, column: str) -> pl.Expr:
        """Expression mapping ``column`` to its codes (float32), unknown values to one extra code."""
        known = self.values[column]
        mapping = dict(zip(known, range(len(known)), strict=True))
        return pl.col(column).replace_strict(mapping, default=len(known), return_dtype=pl.Float32)

    def topic_slots(self) -> int:
        """Number of topic codes, the unknown one included."""
        return len(self.values[Col.TOPIC]) + 1

    def to_json(self) -> str:
        """Serialise for the model artifact."""
        return json.dumps({column: list(values) for column, values in self.values.items()}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Encoders:
        """Rebuild from :meth:`to_json`'s output.

        Raises:
            ArtifactMismatchError: The saved encoders do not cover the columns this code encodes.
        """
        raw = json.loads(text)
        missing = sorted(set(CODED_COLUMNS) - set(raw))
        if missing:
            raise ArtifactMismatchError(f"saved encoders lack {', '.join(missing)}: retrain with `postrec build`")
        return cls({column: tuple(values) for column, values in raw.items()})


def _by_frequency(series: pl.Series, limit: int) -> tuple[str, ...]:
    counts = series.drop_nulls().value_counts(name="n")
    ordered = counts.sort(["n", series.name], descending=[True, False])
    return tuple(ordered[series.name].head(limit).to_list())


def fit_encoders(users: pl.DataFrame, posts: pl.DataFrame, max_codes: int = MAX_CODES) -> Encoders:
    """Codes by descending frequency (ties by value), at most ``max_codes`` per column; rarer values share one.

    Args:
        users: The user table.
        posts: The post catalog.
        max_codes: Cap per column, so a long tail of cities does not become thousands of sparse codes.
    """
    sources = {Col.COUNTRY: users, Col.CITY: users, Col.OS: users, Col.SOURCE: users, Col.TOPIC: posts}
    return Encoders({column: _by_frequency(frame[column], max_codes) for column, frame in sources.items()})


def _tfidf(texts: list[str]) -> sp.csr_matrix:
    try:
        return TfidfVectorizer(dtype=np.float32, sublinear_tf=True).fit_transform(texts).tocsr()
    except ValueError:  # no word in any text: every weight is zero
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)


def text_stats(posts: pl.DataFrame) -> pl.DataFrame:
    """Per post: text length in characters and words, and the sum, max and mean of its TF-IDF weights.

    The TF-IDF vocabulary is fitted on the catalog itself: texts carry no time, so this sees no future.
    """
    texts = posts[Col.TEXT].fill_null("").to_list()
    matrix = _tfidf(texts)
    nonzero = np.diff(matrix.indptr)
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    maxes = matrix.max(axis=1).toarray().ravel()
    words = posts[Col.TEXT].fill_null("").str.split(" ").list.len()
    return pl.DataFrame(
        {
            Col.POST_ID: posts[Col.POST_ID],
            Feature.TEXT_CHARS: posts[Col.TEXT].fill_null("").str.len_chars().cast(pl.Float32),
            Feature.TEXT_WORDS: words.cast(pl.Float32),
            Feature.TFIDF_SUM: sums.astype(np.float32),
            Feature.TFIDF_MAX: maxes.astype(np.float32),
            Feature.TFIDF_MEAN: (sums / np.maximum(nonzero, 1)).astype(np.float32),
        }
    )


def _smoothed(likes: pl.Expr, views: pl.Expr, prior: pl.Expr | float, weight: float) -> pl.Expr:
    return ((likes + weight * prior) / (views + weight)).cast(pl.Float32)


def smoothed_rate(likes: FloatArray, views: FloatArray, prior: float, weight: float) -> FloatArray:
    """The like rate of :func:`_smoothed` on arrays: ``weight`` pseudo-views at the ``prior`` rate."""
    rate: FloatArray = ((likes + weight * prior) / (views + weight)).astype(np.float32)
    return rate


def global_like_rate(counts: FeedCounts) -> float:
    """Likes per view over all users before the cutoff; 0.1 when nothing was viewed yet."""
    views = int(counts.users[Agg.VIEWS].sum())
    return float(counts.users[Agg.LIKES].sum()) / views if views else 0.1


def _user_frame(users: pl.DataFrame, counts: FeedCounts, encoders: Encoders, prior: float) -> pl.DataFrame:
    joined = users.sort(Col.USER_ID).join(counts.users, on=Col.USER_ID, how="left").fill_null(0)
    return joined.select(
        Col.USER_ID,
        pl.col(Col.AGE).alias(Feature.AGE),
        pl.col(Col.GENDER).alias(Feature.GENDER),
        pl.col(Col.EXP_GROUP).alias(Feature.EXP_GROUP),
        *(encoders.code(column).alias(CODED_COLUMNS[column]) for column in (Col.COUNTRY, Col.CITY, Col.OS, Col.SOURCE)),
        pl.col(Agg.VIEWS).alias(Feature.USER_VIEWS),
        pl.col(Agg.LIKES).alias(Feature.USER_LIKES),
        _smoothed(pl.col(Agg.LIKES), pl.col(Agg.VIEWS), prior, USER_PRIOR_VIEWS).alias(Feature.USER_LIKE_RATE),
    )


def _post_frame(
    posts: pl.DataFrame, text: pl.DataFrame, counts: FeedCounts, encoders: Encoders, prior: float
) -> pl.DataFrame:
    joined = (
        posts.sort(Col.POST_ID)
        .join(text, on=Col.POST_ID, how="left")
        .join(counts.posts, on=Col.POST_ID, how="left")
        .with_columns(pl.col(Agg.VIEWS, Agg.LIKES, Agg.RECENT_VIEWS, Agg.RECENT_LIKES).fill_null(0))
    )
    rate = _smoothed(pl.col(Agg.LIKES), pl.col(Agg.VIEWS), prior, POST_PRIOR_VIEWS)
    return joined.with_columns(rate.alias(Feature.POST_LIKE_RATE)).select(
        Col.POST_ID,
        encoders.code(Col.TOPIC).alias(Feature.TOPIC),
        *(pl.col(name) for name in (Feature.TEXT_CHARS, Feature.TEXT_WORDS)),
        *(pl.col(name) for name in (Feature.TFIDF_SUM, Feature.TFIDF_MAX, Feature.TFIDF_MEAN)),
        pl.col(Agg.VIEWS).alias(Feature.POST_VIEWS),
        pl.col(Agg.LIKES).alias(Feature.POST_LIKES),
        pl.col(Feature.POST_LIKE_RATE),
        pl.col(Agg.RECENT_VIEWS).alias(Feature.POST_RECENT_VIEWS),
        _smoothed(
            pl.col(Agg.RECENT_LIKES), pl.col(Agg.RECENT_VIEWS), pl.col(Feature.POST_LIKE_RATE), POST_PRIOR_VIEWS
        ).alias(Feature.POST_RECENT_LIKE_RATE),
    )


def _matrix(frame: pl.DataFrame, names: Sequence[str]) -> FloatArray:
    return np.ascontiguousarray(frame.select(names).cast(pl.Float32).to_numpy(), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Everything scoring needs for one cutoff, as arrays indexed by user position and post position.

    Attributes:
        cutoff: Only feed rows strictly before this time were used.
        user_ids: Sorted user ids; row i of the user arrays is ``user_ids[i]``.
        users: (users x USER_FEATURES).
        post_ids: Sorted post ids; row j of the post arrays is ``post_ids[j]``.
        posts: (posts x POST_FEATURES).
        post_topics: Topic code of each post, the index into ``user_topics``' second axis.
        user_topics: (users x topic codes x USER_TOPIC_FEATURES).
        liked_indptr: CSR row pointers (users + 1) of the posts each user liked before the cutoff.
        liked_posts: CSR column indices: post positions.
        viewed_indptr: CSR row pointers (users + 1) of the posts each user was shown before the cutoff.
        viewed_posts: CSR column indices: post positions, sorted within each user.
        like_prior: :func:`global_like_rate` before the cutoff, the prior the user rates were smoothed with, so one
            user's features can be recomputed later the same way.
        last_like_days: Time of each user's latest like before the cutoff, in days since the epoch (NaN without
            one): the moment the collaborative era popularity is read at.
    """

    cutoff: datetime
    user_ids: IntArray
    users: FloatArray
    post_ids: IntArray
    posts: FloatArray
    post_topics: IndexArray
    user_topics: FloatArray
    liked_indptr: IndexArray
    liked_posts: PositionArray
    viewed_indptr: IndexArray
    viewed_posts: PositionArray
    like_prior: float
    last_like_days: DayArray

    def user_positions(self, user_ids: npt.ArrayLike) -> IndexArray:
        """Row positions of the given user ids; unknown ids raise ``KeyError``."""
        return id_positions(self.user_ids, user_ids, "user")

    def post_positions(self, post_ids: npt.ArrayLike) -> IndexArray:
        """Row positions of the given post ids; unknown ids raise ``KeyError``."""
        return id_positions(self.post_ids, post_ids, "post")

    def was_shown(self, user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32]) -> BoolArray:
        """Whether each (user id, post id) was shown before the cutoff; False for ids outside the set."""
        users, known = positions_or_last(self.user_ids, user_ids)
        posts, known_post = positions_or_last(self.post_ids, post_ids)
        shown = csr_contains(self.viewed_indptr, self.viewed_posts, self.post_ids.size, users, posts)
        return shown & known & known_post


def _user_topic_array(user_ids: IntArray, users: pl.DataFrame, counts: FeedCounts, encoders: Encoders) -> FloatArray:
    n_users, n_topics = user_ids.size, encoders.topic_slots()
    views = np.zeros((n_users, n_topics), dtype=np.float32)
    likes = np.zeros((n_users, n_topics), dtype=np.float32)
    known = counts.user_topics.join(users.select(Col.USER_ID), on=Col.USER_ID, how="semi")
    rows = id_positions(user_ids, known[Col.USER_ID].to_numpy(), "user")
    cols = known.select(encoders.code(Col.TOPIC)).to_series().to_numpy().astype(np.int64)
    np.add.at(views, (rows, cols), known[Agg.VIEWS].to_numpy().astype(np.float32))
    np.add.at(likes, (rows, cols), known[Agg.LIKES].to_numpy().astype(np.float32))
    user_rate = users[Feature.USER_LIKE_RATE].to_numpy().astype(np.float32)[:, None]
    user_views = np.maximum(users[Feature.USER_VIEWS].to_numpy().astype(np.float32), 1.0)[:, None]
    rate = (likes + USER_TOPIC_PRIOR_VIEWS * user_rate) / (views + USER_TOPIC_PRIOR_VIEWS)
    return np.ascontiguousarray(np.stack([views, likes, rate, views / user_views], axis=2), dtype=np.float32)


class UserSide(TypedDict):
    """The :class:`FeatureSet` fields that depend on the users (see :func:`user_side`)."""

    user_ids: IntArray
    users: FloatArray
    user_topics: FloatArray
    liked_indptr: IndexArray
    liked_posts: PositionArray
    viewed_indptr: IndexArray
    viewed_posts: PositionArray
    last_like_days: DayArray


def user_side(
    users: pl.DataFrame,
    counts: FeedCounts,
    encoders: Encoders,
    prior: float,
    post_ids: IntArray,
    liked: pl.DataFrame,
    viewed: pl.DataFrame | Csr,
) -> UserSide:
    """The user side of a feature set, as :class:`FeatureSet` fields: user ids, user rows, user x topic rows, and
    the liked and viewed CSRs against ``post_ids``.

    The batch computes it for every user; ``refresh_user`` for one user on that user's rows of now, with the
    version's ``prior``, so both give the same numbers for the same rows.

    Args:
        users: The user table (or some of its rows).
        counts: Feed aggregates of those users (other users' rows are ignored).
        encoders: Categorical codes.
        prior: The global like rate the user like rates are smoothed towards (:func:`global_like_rate`).
        post_ids: Sorted post ids, the CSRs' columns.
        liked: (timestamp, user_id, post_id) likes left out of scoring; a null timestamp (a like known without
            its time) leaves the user's latest like time as the timed likes give it.
        viewed: (user_id, post_id) pairs shown before, or their CSR against the users sorted by id and
            ``post_ids`` (as :func:`batch.pipeline.viewed.load_viewed` builds it).
    """
    frame = _user_frame(users, counts, encoders, prior)
    user_ids = frame[Col.USER_ID].to_numpy().astype(np.int32)
    liked_indptr, liked_posts = pairs_csr(user_ids, post_ids, liked)
    viewed_indptr, viewed_posts = _viewed_csr(user_ids, post_ids, viewed)
    return UserSide(
        user_ids=user_ids,
        users=_matrix(frame, USER_FEATURES),
        user_topics=_user_topic_array(user_ids, frame, counts, encoders),
        liked_indptr=liked_indptr,
        liked_posts=liked_posts,
        viewed_indptr=viewed_indptr,
        viewed_posts=viewed_posts,
        last_like_days=last_like_days(user_ids, liked),
    )


def last_like_days(user_ids: IntArray, liked: pl.DataFrame) -> DayArray:
    """Each user's latest like time in days since the epoch (NaN without a timed like); ``user_ids`` sorted."""
    latest = (
        liked.drop_nulls(Col.TIMESTAMP)
        .group_by(Col.USER_ID)
        .agg((pl.col(Col.TIMESTAMP).max().dt.epoch("us") / MICROSECONDS_PER_DAY).alias(Col.TIMESTAMP))
    )
    days = np.full(user_ids.size, np.nan, dtype=np.float64)
    positions, known = positions_or_last(user_ids, latest[Col.USER_ID].to_numpy())
    days[positions[known]] = latest[Col.TIMESTAMP].to_numpy()[known]
    return days


def _viewed_csr(user_ids: IntArray, post_ids: IntArray, viewed: pl.DataFrame | Csr) -> Csr:
    if isinstance(viewed, pl.DataFrame):
        return pairs_csr(user_ids, post_ids, viewed)
    if viewed[0].size != user_ids.size + 1:
        raise ValueError(f"the viewed CSR has {viewed[0].size - 1} rows for {user_ids.size} users")
    return viewed


def sorted_ids(frame: pl.DataFrame, column: str) -> IntArray:
    """The ids of ``column`` sorted, as int32: the row order of a feature set's user or post arrays."""
    return np.sort(frame[column].to_numpy()).astype(np.int32)


def build_features(
    users: pl.DataFrame,
    posts: pl.DataFrame,
    text: pl.DataFrame,
    counts: FeedCounts,
    liked: pl.DataFrame,
    encoders: Encoders,
    viewed: pl.DataFrame | Csr | None = None,
) -> FeatureSet:
    """Assemble the feature arrays for ``counts.cutoff``.

    Args:
        users: The user table.
        posts: The post catalog.
        text: :func:`text_stats` of the catalog.
        counts: Feed aggregates before the cutoff.
        liked: (timestamp, user_id, post_id) likes before the cutoff, left out of scoring.
        encoders: Categorical codes, from :func:`fit_encoders` or a saved artifact.
        viewed: (user_id, post_id) pairs shown before the cutoff, or their CSR (see :func:`user_side`); None =
            nothing shown.
    """
    prior = global_like_rate(counts)
    post_frame = _post_frame(posts, text, counts, encoders, prior)
    post_ids = post_frame[Col.POST_ID].to_numpy().astype(np.int32)
    shown = viewed if viewed is not None else pl.DataFrame(schema={Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32})
    return FeatureSet(
        cutoff=counts.cutoff,
        post_ids=post_ids,
        posts=_matrix(post_frame, POST_FEATURES),
        post_topics=post_frame[Feature.TOPIC].to_numpy().astype(np.int64),
        like_prior=prior,
        **user_side(users, counts, encoders, prior, post_ids, liked, shown),
    )


def moment_features(timestamps: pl.Series) -> FloatArray:
    """(rows x TIME_FEATURES): hour, ISO weekday and month of each timestamp."""
    frame = timestamps.to_frame("t").select(
        pl.col("t").dt.hour().alias(Feature.HOUR),
        pl.col("t").dt.weekday().alias(Feature.WEEKDAY),
        pl.col("t").dt.month().alias(Feature.MONTH),
    )
    return _matrix(frame, TIME_FEATURES)


def serving_moment(as_of: datetime) -> datetime:
    """The moment whose time features scoring uses: :data:`SERVE_HOUR` on the last day before ``as_of``."""
    last_day = (as_of - timedelta(microseconds=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return last_day + timedelta(hours=SERVE_HOUR)


def _fortran(rows: int, extra_columns: int = 0) -> FloatArray:
    # Column-major: CatBoost wraps such a matrix without copying it, about twice as fast as a row-major one.
    matrix: FloatArray = np.empty((len(FEATURE_NAMES) + extra_columns, rows), dtype=np.float32).T
    return matrix


USER_SLICE: Final = slice(0, len(USER_FEATURES))
POST_SLICE: Final = slice(USER_SLICE.stop, USER_SLICE.stop + len(POST_FEATURES))
USER_TOPIC_SLICE: Final = slice(POST_SLICE.stop, POST_SLICE.stop + len(USER_TOPIC_FEATURES))
TIME_SLICE: Final = slice(USER_TOPIC_SLICE.stop, USER_TOPIC_SLICE.stop + len(TIME_FEATURES))
VIEWED_COLUMN: Final = FEATURE_NAMES.index(Feature.VIEWED_BEFORE)


def viewed_flags(features: FeatureSet, users: IndexArray, posts: IndexArray) -> FloatArray:
    """1.0 where the (user position, post position) pair was shown before the cutoff, else 0.0."""
    return csr_contains(features.viewed_indptr, features.viewed_posts, features.post_ids.size, users, posts).astype(
        np.float32
    )


def pair_matrix(
    features: FeatureSet, users: IndexArray, posts: IndexArray, moments: FloatArray, extra_columns: int = 0
) -> FloatArray:
    """Feature matrix (pairs x FEATURE_NAMES) of arbitrary (user position, post position, moment) rows.

    Args:
        features: The feature set.
        users: User positions, one per row.
        posts: Post positions, one per row.
        moments: (rows x TIME_FEATURES), from :func:`moment_features`.
        extra_columns: Columns left unfilled after :data:`FEATURE_NAMES`, for another feature set to fill.
    """
    matrix = _fortran(users.size, extra_columns)
    matrix[:, USER_SLICE] = features.users[users]
    matrix[:, POST_SLICE] = features.posts[posts]
    matrix[:, USER_TOPIC_SLICE] = features.user_topics[users, features.post_topics[posts]]
    matrix[:, TIME_SLICE] = moments
    matrix[:, VIEWED_COLUMN] = viewed_flags(features, users, posts)
    return matrix


def block_matrix(features: FeatureSet, users: IndexArray, moment: FloatArray, extra_columns: int = 0) -> FloatArray:
    """Feature matrix of every post for each of ``users``: rows are (user 0, post 0), (user 0, post 1), ...

    Built column by column through broadcasting, which is what keeps exhaustive scoring close to CatBoost's own
    predict throughput.

    Args:
        features: The feature set.
        users: User positions.
        moment: The time features of scoring.
        extra_columns: Columns left unfilled after :data:`FEATURE_NAMES`, for another feature set to fill.
    """
    n_users, n_posts = users.size, features.post_ids.size
    matrix = _fortran(n_users * n_posts, extra_columns)
    user_rows = features.users[users]
    for offset in range(USER_SLICE.stop):
        matrix[:, offset].reshape(n_users, n_posts)[:] = user_rows[:, offset, None]
    for offset in range(len(POST_FEATURES)):
        matrix[:, POST_SLICE.start + offset].reshape(n_users, n_posts)[:] = features.posts[None, :, offset]
    user_topics = features.user_topics[users]
    for offset in range(len(USER_TOPIC_FEATURES)):
        column = matrix[:, USER_TOPIC_SLICE.start + offset].reshape(n_users, n_posts)
        np.take(user_topics[:, :, offset], features.post_topics, axis=1, out=column, mode="clip")
    for offset in range(len(TIME_FEATURES)):
        matrix[:, TIME_SLICE.start + offset] = moment[offset]
    viewed = matrix[:, VIEWED_COLUMN].reshape(n_users, n_posts)
    viewed[:] = 0.0
    viewed[csr_entries(features.viewed_indptr, features.viewed_posts, users)] = 1.0
    return matrix
