"""A correction's weight: how a weighed model scores, and the weight chosen on the validation window."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from batch.pipeline.options import TrainParams
from batch.pipeline.samples import Sample
from batch.pipeline.score import predict_raw, score_users
from batch.pipeline.train import (
    Fitted,
    LabelledSet,
    corrected,
    fit_correction,
    fit_correction_trees,
    hitrate,
    sample_matrix,
)
from batch.pipeline.weigh import best_weight, hitrate_by_weight
from common.ab import CONTROL, TEST
from common.columns import Col
from tests.unit.batch.pipeline.test_train import base_on_first_columns, labelled_set

PARAMS = TrainParams(
    iterations=15,
    depth=3,
    seed=11,
    threads=1,
    correction_iterations=10,
    correction_depth=2,
    correction_weights=(0, 0.5, 1),
)


def fitted_pieces(data: LabelledSet):
    columns = data.features.users.shape[1]  # the base reads the users' columns; the correction adds the rest
    base = base_on_first_columns(data, columns, PARAMS)
    return base, fit_correction_trees(base, data, PARAMS), columns


def test_the_weight_scales_what_the_correction_adds_to_the_base_scores():
    data = labelled_set()
    base, trees, columns = fitted_pieces(data)
    matrix, _ = sample_matrix(data)
    own = predict_raw(base, np.ascontiguousarray(matrix[:, :columns]))
    full = predict_raw(fit_correction(base, data, PARAMS), matrix)
    assert not np.allclose(full, own)

    for weight in (0.0, 0.5, 1.0):
        weighed = predict_raw(corrected(base, trees, weight), matrix)
        np.testing.assert_allclose(weighed, own + weight * (full - own), rtol=1e-5, atol=1e-6)


def test_fitted_models_come_in_the_wanted_order_with_control_untouched():
    data = labelled_set()
    base, trees, _ = fitted_pieces(data)
    fitted = Fitted((TEST, CONTROL), {CONTROL: base}, {TEST: trees})

    models = fitted.models({TEST: 0.0})

    assert list(models) == [TEST, CONTROL] and models[CONTROL] is base
    assert models[TEST].tree_count_ == base.tree_count_ + trees.tree_count_


@pytest.mark.parametrize(
    ("rates", "chosen"),
    [({0.0: 0.30, 0.5: 0.40, 1.0: 0.35}, 0.5), ({0.0: 0.40, 0.5: 0.40, 1.0: 0.40}, 1.0), ({0.0: 0.5, 1.0: 0.2}, 0.0)],
)
def test_the_weight_whose_lists_hit_most_is_chosen_and_of_equals_the_largest(rates, chosen):
    assert best_weight(rates) == chosen


def window_likes_of(data: LabelledSet) -> pl.DataFrame:
    liked = data.samples.filter(pl.col(Sample.LABEL) == 1).select(Col.USER_ID, Col.POST_ID)
    return liked.unique()


def test_weight_zero_hits_as_the_base_model_does():
    data = labelled_set()
    base, trees, _ = fitted_pieces(data)
    likes = window_likes_of(data)

    rates = hitrate_by_weight(base, trees, data, likes, PARAMS)

    assert list(rates) == list(PARAMS.correction_weights)
    users = np.unique(likes[Col.USER_ID].to_numpy()).astype(np.int32)
    own = score_users(base, data.inputs, users, 5).post_ids
    assert rates[0.0] == pytest.approx(hitrate(own, users, likes))
    full = score_users(corrected(base, trees), data.inputs, users, 5).post_ids
    assert rates[1.0] == pytest.approx(hitrate(full, users, likes))
    assert not np.array_equal(own, full)  # the correction moves some lists: the weights are told apart
