"""Pure parts of the sharded refresh: shard bounds, slicing a feature set and putting it back, the wire form of
arrays and models, and the final job's completeness rule."""

from __future__ import annotations

from datetime import datetime

import catboost
import msgspec
import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from batch.pipeline.embed import EmbeddingInfo
from batch.pipeline.embed_features import EmbeddingFeatureSet, EmbedFeature, TextNeighbours, UserPostSpace
from batch.pipeline.features import USER_FEATURES, Feature, FeatureSet, build_features, fit_encoders, text_stats
from batch.pipeline.feed_counts import Agg, count_feed
from common.columns import Action, Col
from worker.extras import ExtraLayout, extra_layout, extra_post_arrays, extra_user_arrays, shard_extra
from worker.refresh import completion_problems
from worker.shards import iter_shards, post_arrays, shard_bounds, shard_features, user_arrays
from worker.staging import RefreshPlan, ShardCounts
from worker.transfer import decode_arrays, encode_arrays, model_from_bytes, model_to_bytes
from worker.user_rows import UserRows, user_features_now


def feature_set() -> FeatureSet:
    """Four users (10, 11, 12, 13) and three posts (1, 2, 3); user 11 liked posts 1 and 3, user 13 liked post 2."""
    return FeatureSet(
        cutoff=datetime(2021, 12, 29, 0, 0, 0, 5),
        user_ids=np.array([10, 11, 12, 13], dtype=np.int32),
        users=np.arange(8, dtype=np.float32).reshape(4, 2),
        post_ids=np.array([1, 2, 3], dtype=np.int32),
        posts=np.arange(6, dtype=np.float32).reshape(3, 2),
        post_topics=np.array([0, 1, 0], dtype=np.int64),
        user_topics=np.arange(16, dtype=np.float32).reshape(4, 2, 2),
        liked_indptr=np.array([0, 0, 2, 2, 3], dtype=np.int64),
        liked_posts=np.array([0, 2, 1], dtype=np.int64),
        viewed_indptr=np.array([0, 1, 1, 3, 3], dtype=np.int64),
        viewed_posts=np.array([1, 0, 2], dtype=np.int16),
        like_prior=0.125,
        last_like_days=np.array([np.nan, 18_990.5, np.nan, 18_991.25]),
    )


def liked_of(features: FeatureSet, position: int) -> list[int]:
    start, stop = features.liked_indptr[position], features.liked_indptr[position + 1]
    return features.post_ids[features.liked_posts[start:stop]].tolist()


@pytest.mark.parametrize(
    ("users", "per_shard", "expected"),
    [
        (0, 5, []),
        (4, 5, [(0, 4)]),
        (10, 5, [(0, 5), (5, 10)]),
        (11, 5, [(0, 5), (5, 10), (10, 11)]),
    ],
)
def test_shard_bounds_cover_every_user_once(users: int, per_shard: int, expected: list) -> None:
    assert shard_bounds(users, per_shard) == expected


@pytest.mark.parametrize("per_shard", [1, 2, 3, 4])
def test_shards_put_back_hold_the_same_users_and_likes(per_shard: int) -> None:
    full = feature_set()
    posts = decode_arrays(encode_arrays(post_arrays(full)))
    for arrays in iter_shards(full, per_shard):
        shard = shard_features(posts, decode_arrays(encode_arrays(arrays)))
        assert shard.cutoff == full.cutoff
        assert np.array_equal(shard.post_ids, full.post_ids) and np.array_equal(shard.posts, full.posts)
        for position, user_id in enumerate(shard.user_ids.tolist()):
            original = int(full.user_positions([user_id])[0])
            assert np.array_equal(shard.users[position], full.users[original])
            assert np.array_equal(shard.user_topics[position], full.user_topics[original])
            assert liked_of(shard, position) == liked_of(full, original)
        assert shard.like_prior == full.like_prior


def test_user_arrays_rebase_the_liked_csr() -> None:
    arrays = user_arrays(feature_set(), 1, 3)
    assert arrays["user_ids"].tolist() == [11, 12]
    assert arrays["liked_indptr"].tolist() == [0, 2, 2]
    assert arrays["liked_posts"].tolist() == [0, 2]


CUTOFF = datetime(2021, 10, 10)
USERS = pl.DataFrame(
    {
        Col.USER_ID: [1, 2],
        Col.AGE: [20, 30],
        Col.CITY: ["Moscow", "Minsk"],
        Col.COUNTRY: ["Russia", "Belarus"],
        Col.EXP_GROUP: [0, 1],
        Col.GENDER: [0, 1],
        Col.OS: ["Android", "iOS"],
        Col.SOURCE: ["ads", "organic"],
    },
    schema_overrides={Col.USER_ID: pl.Int32, Col.AGE: pl.Int16, Col.EXP_GROUP: pl.Int8, Col.GENDER: pl.Int8},
)
POSTS = pl.DataFrame(
    {Col.POST_ID: [10, 20, 30], Col.TEXT: ["markets fell", "covid cases", "a good movie"]},
    schema_overrides={Col.POST_ID: pl.Int32},
).with_columns(pl.Series(Col.TOPIC, ["business", "covid", "movie"]))
# (day of October 2021, user, post, action): before the cutoff (the 10th), then user 1's rows after it.
BEFORE = [(1, 1, 10, Action.VIEW), (1, 1, 10, Action.LIKE), (2, 1, 20, Action.VIEW), (3, 2, 20, Action.VIEW)]
AFTER = [(11, 1, 30, Action.VIEW), (11, 1, 30, Action.LIKE), (12, 1, 20, Action.VIEW), (12, 1, 99, Action.VIEW)]


def feed_frame(rows: list[tuple[int, int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(datetime(2021, 10, d, 12), user, post, action) for d, user, post, action in rows],
        schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32, Col.ACTION: pl.String},
        orient="row",
    )


def version_features() -> FeatureSet:
    """The batch's features at the cutoff, as a live version holds them."""
    feed = feed_frame(BEFORE)
    rows = feed.select(Col.TIMESTAMP, Col.USER_ID, Col.POST_ID, Col.ACTION)
    liked = rows.filter(pl.col(Col.ACTION) == Action.LIKE).drop(Col.ACTION)
    viewed = rows.filter(pl.col(Col.ACTION) == Action.VIEW).drop(Col.ACTION, Col.TIMESTAMP)
    counts = count_feed(feed, POSTS, CUTOFF)
    return build_features(USERS, POSTS, text_stats(POSTS), counts, liked, fit_encoders(USERS, POSTS), viewed)


def rows_of_user_1(rows: list[tuple[int, int, int, str]]) -> UserRows:
    feed = feed_frame([row for row in rows if row[1] == 1])
    return UserRows(USERS.filter(pl.col(Col.USER_ID) == 1), feed.join(POSTS.drop(Col.TEXT), on=Col.POST_ID, how="left"))


def test_one_user_of_now_without_new_rows_equals_the_batch_row() -> None:
    full = version_features()
    one = user_features_now(full, fit_encoders(USERS, POSTS), rows_of_user_1(BEFORE), liked_post_ids=[])
    assert one.user_ids.tolist() == [1] and one.cutoff == full.cutoff
    assert np.array_equal(one.users[0], full.users[0]) and np.array_equal(one.user_topics[0], full.user_topics[0])
    assert liked_of(one, 0) == liked_of(full, 0) == [10]
    assert one.viewed_posts.tolist() == full.viewed_posts[: full.viewed_indptr[1]].tolist()
    assert (
        one.last_like_days.tolist() == full.last_like_days[:1].tolist() == [days_since_epoch(datetime(2021, 10, 1, 12))]
    )


def test_one_user_of_now_counts_every_row_and_leaves_out_every_like() -> None:
    full = version_features()
    rows = rows_of_user_1(BEFORE + AFTER)
    one = user_features_now(full, fit_encoders(USERS, POSTS), rows, liked_post_ids=[20, 77])
    counts = count_feed(rows.feed, POSTS, datetime(2022, 1, 1))
    user = counts.users.row(0, named=True)
    views, likes = (one.users[0, USER_FEATURES.index(name)] for name in (Feature.USER_VIEWS, Feature.USER_LIKES))
    assert (views, likes) == (user[Agg.VIEWS], user[Agg.LIKES]) == (5, 2)
    assert one.post_ids[one.viewed_posts].tolist() == [10, 20, 30]  # post 99 is not in the catalog
    assert liked_of(one, 0) == [10, 20, 30]
    assert one.posts is full.posts and one.cutoff == full.cutoff
    # The liked set's likes come without a time: the latest like is the feed's, on the 11th.
    assert one.last_like_days.tolist() == [days_since_epoch(datetime(2021, 10, 11, 12))]


def days_since_epoch(moment: datetime) -> float:
    return (moment - datetime(1970, 1, 1)).total_seconds() / 86_400


def test_arrays_keep_dtype_shape_and_order() -> None:
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.ones((3, 2), np.float32).T, "c": np.zeros(0)}
    decoded = decode_arrays(encode_arrays(arrays))
    for name, array in arrays.items():
        assert decoded[name].dtype == array.dtype and np.array_equal(decoded[name], array)
        assert decoded[name].flags.writeable


def test_model_bytes_predict_the_same() -> None:
    rng = np.random.default_rng(0)
    matrix, labels = rng.random((40, 3)), np.arange(40) % 2
    model = catboost.CatBoostClassifier(iterations=5, depth=2, verbose=False, allow_writing_files=False)
    model.fit(matrix, labels)
    restored = model_from_bytes(model_to_bytes(model))
    raw = "RawFormulaVal"
    assert np.allclose(restored.predict(matrix, prediction_type=raw), model.predict(matrix, prediction_type=raw))


PLAN = RefreshPlan(
    version="v", meta={}, models=["control"], shard_first_users=[10, 20, 30], users=25, posts=7, popular=7
)
LANDED = {0: ShardCounts(10, 10, 100), 1: ShardCounts(10, 9, 90), 2: ShardCounts(5, 5, 50)}


@pytest.mark.parametrize(
    ("landed", "catalog", "popular", "meta", "problem"),
    [
        (LANDED, 7, 7, True, None),
        ({0: LANDED[0], 2: LANDED[2]}, 7, 7, True, "shards [1] did not land"),
        ({**LANDED, 2: ShardCounts(4, 4, 40)}, 7, 7, True, "scored 24 users, expected 25"),
        (LANDED, 6, 7, True, "catalog holds 6"),
        (LANDED, 7, 0, True, "popular list holds 0"),
        (LANDED, 7, 7, False, "meta hash is gone"),
    ],
)
def test_a_version_goes_live_only_when_every_count_matches(
    landed: dict, catalog: int, popular: int, meta: bool, problem: str | None
) -> None:
    problems = completion_problems(PLAN, landed, catalog, popular, meta)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def embedding_set() -> EmbeddingFeatureSet:
    """Posts 1..3 with two feature columns; a taste space where users 10 and 12 have vectors, an ALS space for all,
    a text kNN where users 11..13 have likes."""
    rng = np.random.default_rng(1)
    post_ids = np.array([1, 2, 3], dtype=np.int32)
    taste = UserPostSpace(
        "taste", np.array([10, 12], np.int32), rng.random((2, 4), np.float32), post_ids, rng.random((3, 4), np.float32)
    )
    als = UserPostSpace(
        "als",
        np.array([10, 11, 12, 13], np.int32),
        rng.random((4, 2), np.float32),
        post_ids,
        rng.random((3, 2), np.float32),
    )
    text_knn = TextNeighbours(
        EmbedFeature.TEXT_KNN,
        np.array([11, 12, 13], np.int32),
        sp.csr_matrix(np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.25, 0.0, 0.75]], np.float32)),
        post_ids,
        sp.csr_matrix(np.array([[0.0, 0.9, 0.1], [0.9, 0.0, 0.0], [0.3, 0.0, 0.0]], np.float32)),
    )
    posts = rng.random((3, 2), np.float32)
    spaces = (taste, als, text_knn)
    return EmbeddingFeatureSet(EmbeddingInfo("tfidf-svd", 4), post_ids, posts, ("pc_0", "cluster"), spaces)


@pytest.mark.parametrize(("first", "last"), [(10, 11), (12, 13), (11, 11), (10, 13)])
def test_embedding_features_of_a_shard_fill_the_same_block(first: int, last: int) -> None:
    full = embedding_set()
    layout = msgspec.json.decode(msgspec.json.encode(extra_layout(full)), type=ExtraLayout)
    posts = decode_arrays(encode_arrays(extra_post_arrays(full)))
    shard = shard_extra(layout, posts, decode_arrays(encode_arrays(extra_user_arrays(full, first, last))))
    users = np.arange(first, last + 1, dtype=np.int32)
    expected = np.zeros((users.size * 3, len(full.names)), np.float32)
    got = np.zeros_like(expected)
    full.fill_block(expected, users, full.post_ids)
    shard.fill_block(got, users, shard.post_ids)
    assert shard.names == full.names and shard.info == full.info
    assert np.array_equal(got, expected)
    assert expected[:, -1].any() or last < 11  # the text kNN's column has scores to compare


def test_a_plan_carries_every_embedding_setting_through_redis() -> None:
    from dataclasses import asdict

    from batch.pipeline.embed_features import EmbedParams

    params = asdict(EmbedParams())  # every field, whatever its type (a bool flag included)
    plan = RefreshPlan(
        version="v", meta={}, models=["test"], embed_params=params, shard_first_users=[200], users=1, posts=1, popular=1
    )
    decoded = msgspec.json.decode(msgspec.json.encode(plan), type=RefreshPlan)
    assert EmbedParams(**decoded.embed_params) == EmbedParams()  # type: ignore[arg-type]
