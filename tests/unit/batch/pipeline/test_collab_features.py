"""Collaborative features: community structure shows, blocks and pairs agree, later likes change nothing, and the
ALS fold-in gives implicit's own user factors."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from batch.pipeline.collab_features import (
    COLLAB_ARRAYS,
    COLLAB_NAMES,
    RANK_DEPTH,
    CollabModel,
    CollabParams,
    collab_arrays,
    collab_from_arrays,
    fit_collab,
    profile_times_similar,
    rank_among_unseen,
)
from batch.pipeline.features import POST_FEATURES, USER_FEATURES, USER_TOPIC_FEATURES, FeatureSet
from common.columns import Col
from common.errors import ArtifactMismatchError

CUTOFF = datetime(2021, 12, 1)
USERS, POSTS, HALF = 40, 20, 10
PARAMS = CollabParams(neighbours=5, ease_regularization=5.0, als_factors=4, half_life_days=2.0, seed=3)


def community_likes(seed: int = 0) -> pl.DataFrame:
    """Users 0..19 like posts 0..9, users 20..39 posts 10..19 (positions = ids here), 4 each, before the cutoff."""
    rng = np.random.default_rng(seed)
    rows = [
        (CUTOFF - timedelta(days=float(rng.integers(1, 20))), user, int(post))
        for user in range(USERS)
        for post in rng.choice(HALF, size=4, replace=False) + (0 if user < USERS // 2 else HALF)
    ]
    return pl.DataFrame(
        rows, schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32}, orient="row"
    )


def csr(pairs: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    unique = pairs.select(Col.USER_ID, Col.POST_ID).unique().sort(Col.USER_ID, Col.POST_ID)
    indptr = np.zeros(USERS + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(unique[Col.USER_ID].to_numpy(), minlength=USERS))
    return indptr, unique[Col.POST_ID].to_numpy().astype(np.int16)


def feature_set(likes: pl.DataFrame, views: pl.DataFrame | None = None) -> FeatureSet:
    """A feature set at CUTOFF whose liked and viewed CSRs hold the pairs before it (the other arrays: zeros)."""
    liked = csr(likes.filter(pl.col(Col.TIMESTAMP) < CUTOFF))
    viewed = csr(views if views is not None else likes.filter(pl.col(Col.TIMESTAMP) < CUTOFF))
    return csr_feature_set(USERS, POSTS, liked, viewed)


def csr_feature_set(
    users: int, posts: int, liked: tuple, viewed: tuple, last_like_days: np.ndarray | None = None
) -> FeatureSet:
    """A feature set at CUTOFF of ``users`` x ``posts`` whose only meaningful arrays are the liked and viewed CSRs
    (row pointers, post positions) and the latest like times (by default the day before CUTOFF for every user with
    a like); the feature arrays are zeros."""
    return FeatureSet(
        cutoff=CUTOFF,
        user_ids=np.arange(users, dtype=np.int32),
        users=np.zeros((users, len(USER_FEATURES)), dtype=np.float32),
        post_ids=np.arange(posts, dtype=np.int32),
        posts=np.zeros((posts, len(POST_FEATURES)), dtype=np.float32),
        post_topics=np.zeros(posts, dtype=np.int64),
        user_topics=np.zeros((users, 1, len(USER_TOPIC_FEATURES)), dtype=np.float32),
        liked_indptr=liked[0],
        liked_posts=liked[1],
        viewed_indptr=viewed[0],
        viewed_posts=viewed[1],
        like_prior=0.1,
        last_like_days=(
            last_like_days
            if last_like_days is not None
            else np.where(np.diff(liked[0]) > 0, (CUTOFF - datetime(1970, 1, 1)).days - 1, np.nan)
        ),
    )


@pytest.fixture(scope="module")
def likes() -> pl.DataFrame:
    return community_likes()


@pytest.fixture(scope="module")
def scores(likes: pl.DataFrame) -> np.ndarray:
    features = feature_set(likes)
    return fit_collab(features, likes, PARAMS).score_block(features, np.arange(USERS))


@pytest.mark.parametrize("column", ["collab_knn_likes", "collab_knn_views", "collab_ease_likes", "collab_als"])
def test_each_user_scores_its_communitys_posts_above_the_others(scores, likes, column):
    values = scores[:, :, COLLAB_NAMES.index(column)]
    own = np.where(np.arange(USERS)[:, None] < USERS // 2, np.arange(POSTS) < HALF, np.arange(POSTS) >= HALF)
    seen = np.zeros((USERS, POSTS), dtype=bool)
    seen[likes[Col.USER_ID].to_numpy(), likes[Col.POST_ID].to_numpy()] = True
    # Every user: its community's unseen posts on average above the other community's posts.
    own_mean = np.where(own & ~seen, values, np.nan)
    other_mean = np.where(~own, values, np.nan)
    assert (np.nanmean(own_mean, axis=1) > np.nanmean(other_mean, axis=1)).all()


def test_recency_popularity_weighs_recent_likes_more():
    rows = [(CUTOFF - timedelta(days=1), user, 0) for user in range(2)]
    rows += [(CUTOFF - timedelta(days=9), user, 1) for user in range(3)]
    likes = pl.DataFrame(
        rows, schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32}, orient="row"
    )
    features = feature_set(likes)

    block = fit_collab(features, likes, PARAMS).score_block(features, np.arange(2))

    popularity = block[0, :, COLLAB_NAMES.index("collab_recent_popularity")]
    # Two likes 1 day old (0.5 ** 0.5 each) beat three likes 9 days old (0.5 ** 4.5 each), half life 2 days.
    np.testing.assert_allclose(popularity[:2], [2 * 0.5**0.5, 3 * 0.5**4.5], rtol=1e-5)
    assert (popularity[2:] == 0).all()


def test_era_and_recent_trends_tell_a_rising_post_from_a_fading_one():
    # Post 0: two likes six hours before the cutoff, the day a hit starts trending. Post 1: eight likes two days
    # before, a hit that is fading. User 10 liked post 2 an hour before the cutoff; user 11 liked it three days
    # before, when neither post had a like.
    rows = [(CUTOFF - timedelta(hours=6), user, 0) for user in range(2)]
    rows += [(CUTOFF - timedelta(days=2), user, 1) for user in range(8)]
    rows += [(CUTOFF - timedelta(hours=1), 10, 2), (CUTOFF - timedelta(days=3), 11, 2)]
    likes = pl.DataFrame(
        rows, schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32}, orient="row"
    )
    # Each user's latest like, in days since the epoch (the feature set holds it as the extract computes it).
    latest = likes.group_by(Col.USER_ID).agg(pl.col(Col.TIMESTAMP).max().dt.epoch("us") / 86_400_000_000)
    last_like_days = np.full(USERS, np.nan)
    last_like_days[latest[Col.USER_ID].to_numpy()] = latest[Col.TIMESTAMP].to_numpy()
    features = csr_feature_set(USERS, POSTS, csr(likes), csr(likes), last_like_days)

    params = replace(PARAMS, recent_days=1.0)
    block = fit_collab(features, likes, params).score_block(features, np.array([10, 11]))

    trend = block[:, :, COLLAB_NAMES.index("collab_era_trend")]
    era = block[:, :, COLLAB_NAMES.index("collab_era_popularity")]
    # (count with a half-day half life + 1) / (era popularity + 1), as of the user's latest like
    assert era[0, 1] > era[0, 0] and trend[0, 0] > 0.8 > 0.5 > trend[0, 1]
    assert (trend[1, :2] == 1).all()  # three days before the cutoff: neither post was liked yet
    # The trend at the cutoff itself, for user 10 only: latest like an hour before, within the day (user 11's: three
    # days before)
    recent = block[:, :, COLLAB_NAMES.index("collab_recent_trend")]
    rising = (2 * 0.5 ** (0.25 / PARAMS.trend_half_life_days) + 1) / (2 * 0.5 ** (0.25 / PARAMS.era_half_life_days) + 1)
    np.testing.assert_allclose(recent[0, 0], rising, rtol=1e-5)
    assert recent[0, 1] < 0.5 < 0.8 < recent[0, 0]
    assert np.isnan(recent[1]).all()


def test_blocks_and_pairs_agree_and_cold_users_score_zero(likes):
    features = feature_set(likes.filter(pl.col(Col.USER_ID) != 7))
    model = fit_collab(features, likes, PARAMS)
    users = np.array([3, 7, 25])
    block = np.full((users.size * POSTS, len(COLLAB_NAMES) + 2), -1.0, dtype=np.float32, order="F")

    model.fill_block(block[:, 1:-1], features, users)

    pairs = model.pair_matrix(features, np.repeat(users, POSTS), np.tile(np.arange(POSTS), users.size))
    np.testing.assert_allclose(block[:, 1:-1], pairs, rtol=1e-5, atol=1e-6)
    assert (block[:, [0, -1]] == -1.0).all()
    cold = pairs[POSTS : 2 * POSTS]  # user 7 liked and viewed nothing: every like-based score is 0, no rank
    assert (cold[:, :4] == 0).all()
    ranks = [COLLAB_NAMES.index(name) for name in COLLAB_NAMES if name.endswith("_rank")]
    assert (cold[:, ranks] == RANK_DEPTH).all()
    assert np.isnan(cold[:, COLLAB_NAMES.index("collab_era_gap_days")]).all()  # no liked post, no era
    assert np.isnan(cold[:, COLLAB_NAMES.index("collab_era_popularity")]).all()  # no like, no moment to read at
    assert np.isnan(cold[:, COLLAB_NAMES.index("collab_recent_trend")]).all()  # no like, not active lately


def test_the_staged_post_side_scores_as_the_fitted_one_and_an_older_one_is_refused(likes):
    features = feature_set(likes)
    model = fit_collab(features, likes, PARAMS)
    arrays = collab_arrays(model)
    assert sorted(arrays) == sorted(COLLAB_ARRAYS)

    staged = collab_from_arrays(arrays)

    users = np.arange(USERS)
    np.testing.assert_array_equal(staged.score_block(features, users), model.score_block(features, users))
    np.testing.assert_array_equal(staged.segment_lift.lift, model.segment_lift.lift)
    np.testing.assert_array_equal(staged.segment_lift.log_share, model.segment_lift.log_share)
    older = {name: values for name, values in arrays.items() if not name.startswith("era_")}
    with pytest.raises(ArtifactMismatchError, match="lacks era_counts, era_grid"):
        collab_from_arrays(older)


def test_likes_and_views_after_the_cutoff_change_nothing(likes):
    late = community_likes(seed=9).with_columns(pl.col(Col.TIMESTAMP) + timedelta(days=30))
    everything = pl.concat([likes, late])

    early = fit_collab(feature_set(likes), likes, PARAMS)
    with_late = fit_collab(feature_set(everything), everything, PARAMS)

    features = feature_set(likes)
    np.testing.assert_array_equal(
        early.score_block(features, np.arange(USERS)), with_late.score_block(features, np.arange(USERS))
    )


def test_als_fold_in_gives_implicits_own_user_factors():
    rng = np.random.default_rng(0)
    likes = sp.csr_matrix((rng.random((300, 80)) < 0.08).astype(np.float32))
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=8, regularization=0.05, alpha=5.0, iterations=30, random_state=1)
        als.fit(likes, show_progress=False)
    posts = np.asarray(als.item_factors, dtype=np.float32)
    features = feature_set(community_likes())
    model = fit_collab(features, community_likes(), PARAMS)
    gram = (posts.T @ posts + 0.05 * np.eye(8)).astype(np.float32)
    folded = replace(model, als_posts=posts, als_gram=gram, als_alpha=5.0).fold_in(likes)

    # implicit solves each user with a few conjugate-gradient steps; the fold-in solves exactly.
    np.testing.assert_allclose(folded, als.user_factors, atol=0.1)


def random_world(users: int, posts: int, likes_per_user: int, views_per_user: int) -> tuple[FeatureSet, pl.DataFrame]:
    """A feature set of random likes and views (some users with neither) and its like rows, all before the cutoff."""
    rng = np.random.default_rng(5)

    def profile(per_user: int) -> tuple[np.ndarray, np.ndarray]:
        rows = [np.sort(rng.choice(posts, size=per_user * (user % 4 != 0), replace=False)) for user in range(users)]
        return np.concatenate([[0], np.cumsum([row.size for row in rows])]), np.concatenate(rows).astype(np.int16)

    liked, viewed = profile(likes_per_user), profile(views_per_user)
    owners = np.repeat(np.arange(users), np.diff(liked[0]))
    likes = pl.DataFrame(
        {
            Col.TIMESTAMP: [CUTOFF - timedelta(days=float(day)) for day in rng.integers(1, 20, owners.size)],
            Col.USER_ID: owners.astype(np.int32),
            Col.POST_ID: liked[1].astype(np.int32),
        }
    )
    features = csr_feature_set(users, posts, liked, viewed)
    return features, likes


def dense_rows(indptr: np.ndarray, indices: np.ndarray, posts: int) -> np.ndarray:
    matrix = np.zeros((indptr.size - 1, posts))
    for row in range(indptr.size - 1):
        matrix[row, indices[indptr[row] : indptr[row + 1]]] = 1.0
    return matrix


def reference_scores(model: CollabModel, features: FeatureSet) -> np.ndarray:
    """(users x posts x columns) by the definitions, in float64 and one user at a time."""
    posts = features.post_ids.size
    liked = dense_rows(features.liked_indptr, features.liked_posts, posts)
    viewed = dense_rows(features.viewed_indptr, features.viewed_posts, posts)
    similar, vectors = model.similar.toarray().astype(np.float64), model.als_posts.astype(np.float64)
    als = np.zeros_like(liked)
    for user, row in enumerate(liked):
        mine = vectors[row > 0]
        if mine.size:
            system = model.als_gram.astype(np.float64) + (model.als_alpha - 1.0) * mine.T @ mine
            als[user] = vectors @ np.linalg.solve(system, model.als_alpha * mine.sum(axis=0))
    popularity = np.broadcast_to(model.recent_popularity.astype(np.float64), liked.shape)
    return np.stack([liked @ similar, viewed @ similar, liked @ model.ease.astype(np.float64), als, popularity], -1)


def test_block_columns_equal_their_definitions_up_to_float32_rounding():
    # 200 posts: 2 likes per user stay under the dense-profile share, 60 views per user go over it, so the kNN
    # columns take both products.
    features, likes = random_world(users=37, posts=200, likes_per_user=2, views_per_user=60)
    model = fit_collab(features, likes, replace(PARAMS, neighbours=20, als_factors=6))
    users = np.arange(37)
    out = np.full((users.size * 200, len(COLLAB_NAMES) + 1), -1.0, dtype=np.float32, order="F")

    model.fill_block(out[:, 1:], features, users)

    raw, ranked = 5, COLLAB_NAMES.index("collab_knn_likes_rank")
    expected = reference_scores(model, features).reshape(users.size * 200, raw)
    np.testing.assert_allclose(out[:, 1 : raw + 1], expected, rtol=1e-4, atol=1e-5)
    assert (out[:, 0] == -1.0).all()
    assert np.abs(expected[:, :4]).max(axis=0).min() > 0.05  # every column has values to compare
    era = out[:, 1 + COLLAB_NAMES.index("collab_era_popularity")]
    np.testing.assert_array_equal(era, model.era_popularity.at(features.last_like_days).ravel())
    viewed = dense_rows(features.viewed_indptr, features.viewed_posts, 200) > 0
    for column in range(4):
        ranks = out[:, ranked + 1 + column].reshape(users.size, 200)
        check_ranks(out[:, 1 + column].reshape(users.size, 200), viewed, ranks)


def check_ranks(scores: np.ndarray, viewed: np.ndarray, ranks: np.ndarray) -> None:
    """Per user: the ranked posts are the unviewed ones with a non-zero score, best first (ties in any order),
    places 0, 1, ... up to the cap; every other post has the cap."""
    for user, row in enumerate(scores):
        candidates = np.flatnonzero(~viewed[user] & (row != 0))
        placed = np.flatnonzero(ranks[user] < RANK_DEPTH)
        assert placed.size == min(RANK_DEPTH, candidates.size)
        assert set(placed) <= set(candidates)
        by_place = placed[np.argsort(ranks[user, placed])]
        assert ranks[user, by_place].tolist() == list(range(placed.size))
        assert (np.diff(row[by_place]) <= 0).all()
        left_out = np.setdiff1d(candidates, placed)
        if placed.size and left_out.size:
            assert row[left_out].max() <= row[by_place[-1]]


@pytest.mark.parametrize("density", [0.005, 0.02, 0.1, 0.6])
def test_profiles_times_similar_is_the_plain_product_on_both_paths(density):
    rng = np.random.default_rng(1)
    profiles = sp.random(50, 300, density=density, format="csr", dtype=np.float32, random_state=rng)
    profiles.data[:] = 1.0
    similar = sp.random(300, 300, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    out = np.full((50, 300), np.nan, dtype=np.float32)

    profile_times_similar(profiles, similar, similar.T.tocsr(), out)

    np.testing.assert_allclose(out, profiles.toarray().astype(np.float64) @ similar.toarray(), rtol=1e-5, atol=1e-6)


def test_fill_block_refuses_a_matrix_whose_columns_are_not_contiguous(likes):
    features = feature_set(likes)
    model = fit_collab(features, likes, PARAMS)
    row_major = np.zeros((2 * POSTS, len(COLLAB_NAMES)), dtype=np.float32)

    with pytest.raises(ValueError, match="Fortran-ordered"):
        model.fill_block(row_major, features, np.array([0, 1]))


def test_rank_among_unseen_orders_each_user_and_caps_shown_and_zero() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    shown = (np.array([0]), np.array([1]))  # user 0 was shown post 1, its best
    out = np.empty_like(scores)
    rank_among_unseen(scores, shown, out)
    assert out.tolist() == [[2, RANK_DEPTH, 1, 0], [0, 1, 2, RANK_DEPTH]]  # a score of 0 is no evidence


def test_rank_among_unseen_caps_beyond_the_depth() -> None:
    scores = np.arange(RANK_DEPTH + 10, dtype=np.float32)[None, ::-1].copy()
    out = np.empty_like(scores)
    rank_among_unseen(scores, (np.zeros(0, np.int64), np.zeros(0, np.int64)), out)
    assert out[0, :RANK_DEPTH].tolist() == list(range(RANK_DEPTH))
    assert set(out[0, RANK_DEPTH:].tolist()) == {RANK_DEPTH}


def test_era_gap_is_the_post_era_minus_the_mean_era_of_the_users_liked_posts():
    likes = pl.DataFrame(
        {
            Col.TIMESTAMP: [CUTOFF - timedelta(days=d) for d in (10, 20, 4, 1)],
            Col.USER_ID: [0, 1, 1, 2],
            Col.POST_ID: [0, 0, 1, 2],
        },
        schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32},
    )
    features = feature_set(likes)
    model = fit_collab(features, likes, PARAMS)
    day = (CUTOFF - datetime(1970, 1, 1)).days
    eras = {0: day - 15.0, 1: day - 4.0, 2: day - 1.0}  # post 0: mean of its two likes

    gap = model.score_block(features, np.arange(4))[:, :, COLLAB_NAMES.index("collab_era_gap_days")]

    assert np.isnan(model.post_era[3:]).all()  # never liked before the cutoff
    np.testing.assert_allclose(gap[0, :3], [eras[p] - eras[0] for p in range(3)], atol=1e-2)
    np.testing.assert_allclose(gap[1, :3], [eras[p] - (eras[0] + eras[1]) / 2 for p in range(3)], atol=1e-2)
    assert np.isnan(gap[3]).all()  # a user without a like has no era
