"""Training samples, a reproducible fit, hitrate, and artifacts that refuse a different feature list."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import catboost
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from batch.pipeline.artifacts import MissingArtifactError, latest_artifact_path, load_artifact, save_artifact
from batch.pipeline.features import FEATURE_NAMES, USER_PRIOR_VIEWS, Encoders, Feature
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.options import TrainParams
from batch.pipeline.samples import VIEW_SCHEMA, Sample, shown_samples, unseen_samples, window_samples
from batch.pipeline.score import score_users
from batch.pipeline.train import (
    LabelledSet,
    RowColumns,
    fit_correction,
    fit_model,
    hitrate,
    moment_order,
    probabilities,
    sample_matrix,
    tree_count,
)
from common.columns import Col
from common.errors import ArtifactMismatchError
from tests.unit.batch.pipeline.test_score import make_features

CATALOG = np.arange(1, 41, dtype=np.int32)
# A pairwise model's default importance needs its training rows; this one reads the trees alone.
IMPORTANCE = "PredictionValuesChange"


def t(day: int, hour: int = 12) -> datetime:
    return datetime(2021, 12, day, hour)


@pytest.fixture
def views() -> pl.DataFrame:
    rows = [
        (t(1), 1, 1, 0),
        (t(1, 13), 1, 1, 1),  # seen twice, liked once: one positive row at the first view
        (t(2), 1, 2, 0),
        (t(3), 1, 3, 1),
        (t(4), 2, 4, 0),
        (t(5), 2, 5, 1),
        (t(6), 3, 6, 0),  # no like: gets no never-shown negatives
    ]
    return pl.DataFrame(rows, schema=VIEW_SCHEMA, orient="row")


def test_shown_rows_are_one_per_pair_liked_if_any_view_was(views):
    shown = shown_samples(views)

    first = shown.filter((pl.col(Col.USER_ID) == 1) & (pl.col(Col.POST_ID) == 1)).row(0, named=True)
    assert shown.height == 6
    assert first[Sample.LABEL] == 1 and first[Col.TIMESTAMP] == t(1)
    assert shown[Sample.LABEL].to_list() == [1, 0, 1, 0, 1, 0]


def seen_in(pairs: pl.DataFrame):
    known = set(pairs.select(Col.USER_ID, Col.POST_ID).iter_rows())

    def was_seen(users: np.ndarray, posts: np.ndarray) -> np.ndarray:
        return np.array([pair in known for pair in zip(users.tolist(), posts.tolist(), strict=True)], dtype=bool)

    return was_seen


@pytest.mark.parametrize("per_positive", [0.0, 1.0, 3.0])
def test_never_shown_negatives_avoid_seen_posts_and_follow_the_mix(views, per_positive):
    shown = shown_samples(views)
    seen = pl.DataFrame({Col.USER_ID: [1, 1, 2], Col.POST_ID: [7, 8, 9]}, schema_overrides={Col.USER_ID: pl.Int32})
    seen = pl.concat([seen.cast({Col.POST_ID: pl.Int32}), views.select(Col.USER_ID, Col.POST_ID)])

    unseen = unseen_samples(shown, seen_in(seen), CATALOG, per_positive, seed=3)

    per_user = dict(unseen.group_by(Col.USER_ID).len().iter_rows())
    assert per_user == ({} if per_positive == 0 else {1: 2 * per_positive, 2: per_positive})
    assert unseen.join(seen, on=[Col.USER_ID, Col.POST_ID], how="semi").height == 0
    assert (unseen[Sample.LABEL] == 0).all() and (unseen[Sample.SHOWN] == 0).all()
    # Each negative takes the time of one of the user's liked posts, so it shares that row's moment.
    liked = shown.filter(pl.col(Sample.LABEL) == 1)
    liked_times = liked.group_by(Col.USER_ID).agg(pl.col(Col.TIMESTAMP).alias("times"))
    for user, moment in unseen.select(Col.USER_ID, Col.TIMESTAMP).iter_rows():
        assert moment in liked_times.filter(pl.col(Col.USER_ID) == user)["times"][0].to_list()


def test_window_samples_are_reproducible_for_a_seed(views):
    seen = seen_in(views)

    first = window_samples(views, seen, CATALOG, 2.0, seed=5)
    again = window_samples(views, seen, CATALOG, 2.0, seed=5)
    other = window_samples(views, seen, CATALOG, 2.0, seed=6)

    assert first.equals(again)
    assert not first.equals(other)


def test_training_rows_leave_out_the_shown_posts_that_were_not_liked(views):
    rows = window_samples(views, seen_in(views), CATALOG, 2.0, seed=5, keep_skipped=False)

    shown = rows.filter(pl.col(Sample.SHOWN) == 1)
    assert shown.select(Col.USER_ID, Col.POST_ID).rows() == [(1, 1), (1, 3), (2, 5)]  # the liked ones
    assert (shown[Sample.LABEL] == 1).all()
    assert rows.filter(pl.col(Sample.SHOWN) == 0).height == 6  # never-shown negatives: 2 per like, as before


def labelled_set(seed: int = 0) -> LabelledSet:
    features = make_features(seed=seed)
    rng = np.random.default_rng(seed)
    users = rng.integers(0, features.user_ids.size, 300)
    posts = rng.integers(0, features.post_ids.size, 300)
    samples = pl.DataFrame(
        {
            Col.USER_ID: features.user_ids[users],
            Col.POST_ID: features.post_ids[posts],
            # A few moments per user, so that a moment holds several posts, as a liked one and its negatives do.
            Col.TIMESTAMP: [t(1) + timedelta(hours=int(h)) for h in rng.integers(0, 4, 300)],
            Sample.LABEL: ((features.users[users, 0] + features.posts[posts, 3]) > 1.0).astype(np.int8),
            Sample.SHOWN: np.ones(300, dtype=np.int8),
        }
    ).sort(Col.USER_ID, Col.TIMESTAMP, Col.POST_ID)
    return LabelledSet(ModelInputs(features), samples)


def test_a_fixed_seed_gives_the_same_model_and_top_5():
    params = TrainParams(iterations=20, depth=3, seed=11, threads=1)
    data = labelled_set()

    first, second = fit_model(data, params), fit_model(data, params)

    top_first = score_users(first, data.inputs, data.features.user_ids, k=5).post_ids
    top_second = score_users(second, data.inputs, data.features.user_ids, k=5).post_ids
    np.testing.assert_array_equal(top_first, top_second)
    assert first.feature_names_ == list(FEATURE_NAMES)


@pytest.mark.parametrize(
    ("liked_rows", "trees"), [(0, 20), (90, 20), (800, 62), (2_000, 154), (2_600, 200), (11_000, 200), (3_000_000, 200)]
)
def test_few_liked_rows_get_fewer_trees(liked_rows, trees):
    assert tree_count(liked_rows, TrainParams()) == trees


def test_the_tree_count_rule_can_be_turned_off_and_never_exceeds_the_maximum():
    assert tree_count(50, TrainParams(likes_per_tree=0)) == 200
    assert tree_count(50, TrainParams(iterations=10)) == 10  # the floor is never above the maximum


def test_a_model_on_few_likes_is_fitted_with_fewer_trees():
    data = labelled_set()  # 300 rows, about a third of them liked
    liked = int(data.samples[Sample.LABEL].sum())

    model = fit_model(data, TrainParams(iterations=200, depth=3, seed=11, threads=1, likes_per_tree=4))

    assert model.tree_count_ == round(liked / 4) < 200


def test_a_single_class_window_is_refused():
    data = labelled_set()
    flat = LabelledSet(data.inputs, data.samples.with_columns(pl.lit(0, pl.Int8).alias(Sample.LABEL)))

    with pytest.raises(ValueError, match="single class"):
        fit_model(flat, TrainParams(iterations=5))


def base_on_first_columns(data: LabelledSet, columns: int, params: TrainParams) -> catboost.CatBoostClassifier:
    """A model that reads only the first ``columns`` of the data's inputs, as control reads a prefix of test's."""
    matrix, labels = sample_matrix(data)
    base = catboost.CatBoostClassifier(
        iterations=params.iterations,
        depth=params.depth,
        random_seed=params.seed,
        thread_count=1,
        allow_writing_files=False,
        verbose=False,
    )
    base.fit(catboost.Pool(matrix[:, :columns], labels, feature_names=data.inputs.names[:columns]))
    return base


@pytest.mark.parametrize("pairwise", [True, False])
def test_a_correction_keeps_the_base_trees_and_splits_only_on_the_added_columns(pairwise):
    params = TrainParams(
        iterations=15, depth=3, seed=11, threads=1, correction_iterations=10, correction_depth=2, pairwise=pairwise
    )
    data = labelled_set()
    matrix, labels = sample_matrix(data)
    # The labels follow a user column and a post column; the base reads only the users' (the first block).
    columns = data.features.users.shape[1]
    base = base_on_first_columns(data, columns, params)

    corrected = fit_correction(base, data, params)

    assert corrected.tree_count_ == base.tree_count_ + 10
    # Oblivious trees: at most 2 ** depth leaves; the correction's are at its own depth, 2.
    leaves = corrected.get_tree_leaf_counts()
    assert leaves[: base.tree_count_].max() == 8 and leaves[base.tree_count_ :].max() == 4
    assert corrected.feature_names_ == data.inputs.names
    kept = corrected.copy()
    kept.shrink(ntree_end=base.tree_count_)
    np.testing.assert_allclose(probabilities(kept, matrix), probabilities(base, matrix[:, :columns]))
    added = corrected.copy()
    added.shrink(ntree_start=base.tree_count_, ntree_end=corrected.tree_count_)
    assert not added.get_feature_importance(type=IMPORTANCE)[:columns].any()
    # The added trees learn the post column the labels follow, which the base cannot see.
    before = roc_auc_score(labels, probabilities(base, matrix[:, :columns]))
    assert roc_auc_score(labels, probabilities(corrected, matrix)) > before


def test_a_correction_also_splits_on_the_base_columns_named_as_its_context():
    # A base of one shallow tree leaves much of the labels' user column unexplained. Pointwise: a user column is the
    # same for every post of a moment, so pairs within a moment could not learn from it.
    params = TrainParams(
        iterations=1, depth=1, seed=11, threads=1, correction_iterations=10, correction_depth=2, pairwise=False
    )
    data = labelled_set()
    columns = data.features.users.shape[1]
    base = base_on_first_columns(data, columns, params)
    context = replace(params, correction_context=(data.inputs.names[0],))

    corrected = fit_correction(base, data, context)

    added = corrected.copy()
    added.shrink(ntree_start=base.tree_count_, ntree_end=corrected.tree_count_)
    importance = added.get_feature_importance(type=IMPORTANCE)
    assert importance[0] > 0
    assert not importance[1:columns].any()


def test_moment_order_brings_each_users_moments_together_in_order():
    samples = pl.DataFrame(
        {Col.USER_ID: [2, 1, 1, 2, 1], Col.TIMESTAMP: [t(1), t(2), t(1), t(1), t(1)], Col.POST_ID: [5, 4, 3, 2, 1]}
    )

    order, groups = moment_order(samples)

    assert order.tolist() == [2, 4, 1, 0, 3]  # user 1 at day 1 (posts 3, 1 as they came), day 2, then user 2
    assert groups.tolist() == [0, 0, 1, 2, 2]


def test_every_moment_of_a_windows_rows_holds_a_liked_post(views):
    rows = window_samples(views, seen_in(views), CATALOG, 2.0, seed=5, keep_skipped=False)

    order, groups = moment_order(rows)
    liked = rows[Sample.LABEL].to_numpy()[order] == 1
    # Each never-shown negative sits with the liked post whose time it took.
    assert set(groups.tolist()) == set(groups[liked].tolist())
    assert groups.max() + 1 == liked.sum()  # the fixture's liked posts are at three distinct moments


def within_moment_order(data: LabelledSet, scores: np.ndarray) -> float:
    """Share of (liked, unliked) pairs of one moment that the scores order right."""
    order, groups = moment_order(data.samples)
    labels, scores = data.samples[Sample.LABEL].to_numpy()[order], scores[order]
    right = total = 0
    for group in np.unique(groups):
        member = groups == group
        liked, other = scores[member & (labels == 1)], scores[member & (labels == 0)]
        right += int((liked[:, None] > other[None, :]).sum())
        total += liked.size * other.size
    return right / total


def test_a_pairwise_model_orders_the_posts_of_a_moment():
    data = labelled_set()
    matrix, _ = sample_matrix(data)

    model = fit_model(data, TrainParams(iterations=30, depth=3, seed=11, threads=1, pairwise=True))

    # Within a moment the labels follow one post column: the pairs are enough to learn it.
    assert within_moment_order(data, probabilities(model, matrix)) > 0.9


def test_a_pairwise_fit_groups_rows_in_any_order():
    data = labelled_set()
    # Latest moments first, the rows of a moment as they were: the fit sees the same groups.
    moments_reversed = data.samples.sort(Col.TIMESTAMP, Col.USER_ID, descending=True, maintain_order=True)
    shuffled = LabelledSet(data.inputs, moments_reversed)
    matrix, _ = sample_matrix(data)
    params = TrainParams(iterations=10, depth=3, seed=11, threads=1, pairwise=True)

    first, again = fit_model(data, params), fit_model(shuffled, params)

    np.testing.assert_allclose(probabilities(first, matrix), probabilities(again, matrix))


def test_a_pairwise_fit_refuses_rows_with_no_moment_to_rank():
    data = labelled_set()
    by_user = data.samples.with_columns((pl.col(Col.USER_ID) % 2).cast(pl.Int8).alias(Sample.LABEL))
    params = TrainParams(iterations=5, threads=1, pairwise=True)

    with pytest.raises(ValueError, match="nothing to rank"):  # both classes, but never at one moment
        fit_model(LabelledSet(data.inputs, by_user), params)
    assert fit_model(LabelledSet(data.inputs, by_user), replace(params, pairwise=False)).tree_count_ == 5


def test_a_correction_refuses_inputs_that_do_not_extend_the_base():
    params = TrainParams(iterations=5, depth=2, threads=1)
    data = labelled_set()
    whole = fit_model(data, params)
    names = data.inputs.names
    renamed = base_on_first_columns(data, 3, params)
    renamed.set_feature_names([names[0], "retired_feature", names[2]])

    with pytest.raises(ValueError, match="add no column"):
        fit_correction(whole, data, params)
    with pytest.raises(ValueError, match=f"column 1 is '{names[1]}' where the base model reads 'retired_feature'"):
        fit_correction(renamed, data, params)


def test_hitrate_counts_users_with_any_recommended_post_liked_in_the_window():
    recommended = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.int32)
    likes = pl.DataFrame({Col.USER_ID: [10, 10, 11, 12], Col.POST_ID: [3, 99, 98, 7]})

    assert hitrate(recommended, np.array([10, 11, 12], dtype=np.int32), likes) == pytest.approx(2 / 3)


@pytest.fixture
def artifact_dir(tmp_path):
    model = fit_model(labelled_set(), TrainParams(iterations=5, depth=2, threads=1))
    encoders = Encoders({"country": ("Russia",), "city": ("Moscow",), "os": (), "source": (), "topic": ("movie",)})
    path = save_artifact(
        tmp_path, "20211230T000000Z-abcdef", {"control": model}, encoders, {"created_at": "2021-12-30T01:00:00"}
    )
    return tmp_path, path


def test_artifact_round_trip(artifact_dir):
    data_dir, path = artifact_dir

    artifact = load_artifact(latest_artifact_path(data_dir))

    assert artifact.version == path.name
    assert artifact.encoders.values["city"] == ("Moscow",)
    assert artifact.metadata["code_version"]
    assert not list(data_dir.glob("models/*.partial"))


def test_artifact_with_another_feature_list_is_refused(artifact_dir):
    _, path = artifact_dir
    saved = json.loads((path / "features.json").read_text())
    saved["features"] = [*saved["features"][1:], "retired_feature"]
    (path / "features.json").write_text(json.dumps(saved))

    with pytest.raises(ArtifactMismatchError, match="retired_feature"):
        load_artifact(path)


def test_no_artifact_says_to_build(tmp_path):
    with pytest.raises(MissingArtifactError, match="postrec build"):
        latest_artifact_path(tmp_path)


def test_own_history_adds_the_windows_activity_to_the_user_counts_and_rates_it_again():
    data = labelled_set()
    own = RowColumns(collab=None, added_likes=np.full(300, 2.0, np.float32), added_views=np.full(300, 10.0, np.float32))
    at_cutoff = replace(data, own_history=None)
    views, likes, rate = (
        FEATURE_NAMES.index(n) for n in (Feature.USER_VIEWS, Feature.USER_LIKES, Feature.USER_LIKE_RATE)
    )

    before, _ = sample_matrix(at_cutoff)
    after, _ = sample_matrix(replace(data, own_history=own))

    np.testing.assert_allclose(after[:, views], before[:, views] + 10.0)
    np.testing.assert_allclose(after[:, likes], before[:, likes] + 2.0)
    prior = data.features.like_prior
    expected = (after[:, likes] + USER_PRIOR_VIEWS * prior) / (after[:, views] + USER_PRIOR_VIEWS)
    np.testing.assert_allclose(after[:, rate], expected, rtol=1e-6)
    others = [i for i in range(before.shape[1]) if i not in (views, likes, rate)]
    np.testing.assert_array_equal(after[:, others], before[:, others])
    with pytest.raises(ValueError, match="row histories of 300 rows for 299 rows"):
        sample_matrix(replace(data, samples=data.samples.head(299), own_history=own))
