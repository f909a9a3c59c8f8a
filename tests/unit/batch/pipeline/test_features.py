"""Features on tiny hand-written frames: counts before a cutoff, codes, smoothed rates, matrix layout, no leakage."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from batch.pipeline.features import (
    FEATURE_NAMES,
    POST_FEATURES,
    POST_PRIOR_VIEWS,
    USER_FEATURES,
    USER_PRIOR_VIEWS,
    USER_TOPIC_FEATURES,
    USER_TOPIC_PRIOR_VIEWS,
    Encoders,
    Feature,
    block_matrix,
    build_features,
    fit_encoders,
    global_like_rate,
    moment_features,
    pair_matrix,
    serving_moment,
    text_stats,
)
from batch.pipeline.feed_counts import Agg, count_feed
from batch.ranking.positions import pairs_csr
from common.columns import Col
from common.errors import ArtifactMismatchError

CUTOFF = datetime(2021, 10, 10)


def day(d: int, hour: int = 12) -> datetime:
    return datetime(2021, 10, d, hour)


@pytest.fixture
def users() -> pl.DataFrame:
    return pl.DataFrame(
        {
            Col.USER_ID: [1, 2, 3],
            Col.AGE: [20, 30, 40],
            Col.CITY: ["Moscow", "Moscow", "Minsk"],
            Col.COUNTRY: ["Russia", "Russia", "Belarus"],
            Col.EXP_GROUP: [0, 1, 2],
            Col.GENDER: [0, 1, 0],
            Col.OS: ["Android", "iOS", "Android"],
            Col.SOURCE: ["ads", "organic", "ads"],
        },
        schema_overrides={Col.USER_ID: pl.Int32, Col.AGE: pl.Int16, Col.EXP_GROUP: pl.Int8, Col.GENDER: pl.Int8},
    )


@pytest.fixture
def posts() -> pl.DataFrame:
    return pl.DataFrame(
        {
            Col.POST_ID: [10, 20, 30],
            Col.TEXT: ["markets fell today markets", "covid cases #covid", "a good movie a good cast"],
            Col.TOPIC: ["business", "covid", "movie"],
        },
        schema_overrides={Col.POST_ID: pl.Int32},
    )


def feed_frame(rows: list[tuple[datetime, int, int, str, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            Col.TIMESTAMP: pl.Datetime("us"),
            Col.USER_ID: pl.Int32,
            Col.POST_ID: pl.Int32,
            Col.ACTION: pl.String,
            Col.TARGET: pl.Int8,
        },
        orient="row",
    )


@pytest.fixture
def feed() -> pl.DataFrame:
    return feed_frame(
        [
            (day(1), 1, 10, "view", 1),
            (day(1, 13), 1, 10, "like", None),
            (day(2), 1, 20, "view", 0),
            (day(3), 2, 20, "view", 1),
            (day(3, 13), 2, 20, "like", 0),
            (day(5), 2, 30, "view", 0),
            (day(9), 3, 30, "view", 0),
        ]
    )


def features_of(users: pl.DataFrame, posts: pl.DataFrame, feed: pl.DataFrame, cutoff: datetime = CUTOFF):
    counts = count_feed(feed, posts, cutoff)
    likes = feed.filter((pl.col(Col.ACTION) == "like") & (pl.col(Col.TIMESTAMP) < cutoff))
    viewed = feed.filter((pl.col(Col.ACTION) == "view") & (pl.col(Col.TIMESTAMP) < cutoff))
    return build_features(users, posts, text_stats(posts), counts, likes, fit_encoders(users, posts), viewed)


def column(matrix: np.ndarray, names: tuple[str, ...], name: str) -> np.ndarray:
    return matrix[:, names.index(name)]


@pytest.mark.parametrize(
    ("cutoff", "views", "likes"),
    [(day(1), [], []), (day(2), [1], [1]), (day(3, 13), [2, 1], [1, 0]), (CUTOFF, [2, 2, 1], [1, 1, 0])],
)
def test_counts_only_see_rows_strictly_before_the_cutoff(posts, feed, cutoff, views, likes):
    counts = count_feed(feed, posts, cutoff)

    assert counts.users[Agg.VIEWS].to_list() == views
    assert counts.users[Agg.LIKES].to_list() == likes


def test_features_ignore_every_change_at_or_after_the_cutoff(users, posts, feed):
    later = feed_frame(
        [
            (CUTOFF, 1, 30, "view", 1),
            (CUTOFF, 1, 30, "like", None),
            (day(20), 3, 10, "view", 1),
            (day(20), 3, 10, "like", 0),
        ]
    )
    before = features_of(users, posts, feed)
    after = features_of(users, posts, pl.concat([feed, later]))

    for name in ("users", "posts", "user_topics", "liked_indptr", "liked_posts", "viewed_indptr", "viewed_posts"):
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name), err_msg=name)


def test_features_do_change_when_earlier_rows_change(users, posts, feed):
    extra = feed_frame([(day(9), 3, 10, "view", 1), (day(9, 13), 3, 10, "like", 0)])

    before = features_of(users, posts, feed)
    after = features_of(users, posts, pl.concat([feed, extra]))

    assert not np.array_equal(before.users, after.users)
    assert not np.array_equal(before.posts, after.posts)


def test_codes_follow_frequency_and_unknown_values_get_one_extra_code(users, posts):
    encoders = fit_encoders(users, posts)
    probe = pl.DataFrame({Col.CITY: ["Moscow", "Minsk", "Paris", None]})

    codes = probe.select(encoders.code(Col.CITY)).to_series().to_list()

    assert encoders.values[Col.CITY] == ("Moscow", "Minsk")
    assert codes == [0.0, 1.0, 2.0, 2.0]


def test_encoders_round_trip_and_reject_missing_columns(users, posts):
    encoders = fit_encoders(users, posts)

    assert Encoders.from_json(encoders.to_json()) == encoders
    with pytest.raises(ArtifactMismatchError, match="city"):
        Encoders.from_json('{"country": [], "os": [], "source": [], "topic": []}')


def test_smoothed_like_rates_pull_towards_their_parent(users, posts, feed):
    features = features_of(users, posts, feed)
    prior = 2 / 5  # 2 likes over 5 views before the cutoff

    post_rates = column(features.posts, POST_FEATURES, Feature.POST_LIKE_RATE)
    expected_post_10 = (1 + POST_PRIOR_VIEWS * prior) / (1 + POST_PRIOR_VIEWS)
    assert post_rates[0] == pytest.approx(expected_post_10, rel=1e-6)

    user_rate = column(features.users, USER_FEATURES, Feature.USER_LIKE_RATE)[2]
    covid = fit_encoders(users, posts).values[Col.TOPIC].index("covid")
    topic_rate = features.user_topics[2, covid, USER_TOPIC_FEATURES.index(Feature.TOPIC_LIKE_RATE)]
    assert topic_rate == pytest.approx(user_rate, rel=1e-6)  # no covid views: the user's own rate
    assert USER_TOPIC_PRIOR_VIEWS > 0


def test_liked_posts_before_the_cutoff_are_recorded_per_user(users, posts, feed):
    features = features_of(users, posts, feed)

    liked = [
        features.post_ids[features.liked_posts[features.liked_indptr[u] : features.liked_indptr[u + 1]]].tolist()
        for u in range(3)
    ]
    assert liked == [[10], [20], []]


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        (day(1), [[0, 0, 0], [0, 0, 0], [0, 0, 0]]),
        (day(3, 13), [[1, 1, 0], [0, 1, 0], [0, 0, 0]]),
        (CUTOFF, [[1, 1, 0], [0, 1, 1], [0, 0, 1]]),
    ],
)
def test_viewed_before_flags_exactly_the_pairs_shown_before_the_cutoff(users, posts, feed, cutoff, expected):
    features = features_of(users, posts, feed, cutoff)
    moment = moment_features(pl.Series([serving_moment(cutoff)]))[0]

    block = block_matrix(features, np.arange(3), moment)
    flags = column(block, FEATURE_NAMES, Feature.VIEWED_BEFORE).reshape(3, 3)

    np.testing.assert_array_equal(flags, np.array(expected, dtype=np.float32))


def test_was_shown_answers_by_ids_and_is_false_for_unknown_ones(users, posts, feed):
    features = features_of(users, posts, feed, day(3, 13))
    user_ids = np.array([1, 1, 2, 2, 3, 99, 1], dtype=np.int32)
    post_ids = np.array([10, 30, 20, 10, 30, 10, 99], dtype=np.int32)

    shown = features.was_shown(user_ids, post_ids)

    assert shown.tolist() == [True, False, True, False, False, False, False]


def test_viewed_before_is_zero_without_view_data(users, posts, feed):
    counts = count_feed(feed, posts, CUTOFF)
    features = build_features(users, posts, text_stats(posts), counts, feed.clear(), fit_encoders(users, posts))
    moment = moment_features(pl.Series([serving_moment(CUTOFF)]))[0]

    block = block_matrix(features, np.arange(3), moment)

    assert not column(block, FEATURE_NAMES, Feature.VIEWED_BEFORE).any()


def test_block_matrix_equals_the_pairs_it_broadcasts(users, posts, feed):
    features = features_of(users, posts, feed)
    moment = moment_features(pl.Series([serving_moment(CUTOFF)]))
    user_positions = np.array([2, 0])
    assert features.viewed_posts.size  # the comparison covers the viewed flags too

    block = block_matrix(features, user_positions, moment[0])
    pairs = pair_matrix(features, np.repeat(user_positions, 3), np.tile(np.arange(3), 2), np.repeat(moment, 6, axis=0))

    assert block.shape == (6, len(FEATURE_NAMES))
    assert block.flags.f_contiguous
    np.testing.assert_array_equal(block, pairs)


def test_time_features_are_hour_weekday_month():
    moments = moment_features(pl.Series([datetime(2021, 12, 26, 21, 5)]))

    assert moments.tolist() == [[21.0, 7.0, 12.0]]
    assert serving_moment(datetime(2021, 12, 30)) == datetime(2021, 12, 29, 20)


def test_text_statistics_count_characters_and_words(posts):
    stats = text_stats(posts)

    assert stats[Feature.TEXT_CHARS].to_list() == [26.0, 18.0, 24.0]
    assert stats[Feature.TEXT_WORDS].to_list() == [4.0, 3.0, 6.0]
    assert (stats[Feature.TFIDF_MAX] <= stats[Feature.TFIDF_SUM]).all()


def test_features_record_the_like_prior_their_user_rates_were_smoothed_with(users, posts, feed):
    features = features_of(users, posts, feed)
    assert features.like_prior == global_like_rate(count_feed(feed, posts, CUTOFF)) == 2 / 5
    rate_of_user_3 = features.users[2, USER_FEATURES.index(Feature.USER_LIKE_RATE)]  # 1 view, no like
    assert rate_of_user_3 == np.float32(USER_PRIOR_VIEWS * 0.4 / (1 + USER_PRIOR_VIEWS))


def test_pairs_csr_sorts_drops_repeats_unknown_ids_and_nulls() -> None:
    user_ids = np.array([10, 20, 30], dtype=np.int32)
    post_ids = np.array([1, 5, 7, 9], dtype=np.int32)
    pairs = pl.DataFrame(
        {
            "user_id": [30, 10, 30, 10, 99, 20, 30, None, 10],
            "post_id": [9, 7, 1, 7, 1, 4, 9, 5, 1],
        },
        schema={"user_id": pl.Int32, "post_id": pl.Int32},
    )
    indptr, posts = pairs_csr(user_ids, post_ids, pairs)
    # user 10: posts 1 and 7 (7 twice); user 20: post 4 is not in the catalog; user 30: posts 1 and 9 (9 twice)
    assert indptr.tolist() == [0, 2, 2, 4]
    assert posts.tolist() == [0, 2, 0, 3]
    empty_indptr, empty_posts = pairs_csr(user_ids, post_ids, pairs.clear())
    assert empty_indptr.tolist() == [0, 0, 0, 0] and empty_posts.size == 0
