"""Training and validation of the ``control`` and ``test`` models on a temporal split.

    ... history ...  | label window          | validation window |
    features < label_start   labels in [label_start, valid_start)
                             features < valid_start   labels in [valid_start, as_of)

Training rows take their features from before the label window, validation rows from before the validation
window: no row's features see the time of its label or anything after it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

import catboost
import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.metrics import log_loss, roc_auc_score

from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.feature_sets import FeatureSets
from batch.pipeline.features import (
    FEATURE_NAMES,
    USER_PRIOR_VIEWS,
    Feature,
    FeatureSet,
    FloatArray,
    moment_features,
    smoothed_rate,
)
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.options import TrainParams
from batch.pipeline.samples import Sample, Samples
from batch.pipeline.score import popular_top, predict_raw, score_users
from batch.pipeline.steps import step
from batch.ranking.metrics import hit_matrix, hitrate_per_user
from common.ab import CONTROL
from common.columns import Col
from common.logs import format_figures

log = logging.getLogger(__name__)

HITRATE_AT: Final = 5
POINTWISE_LOSS: Final = "Logloss"
PAIRWISE_LOSS: Final = "PairLogit"


@dataclass(frozen=True, slots=True)
class RowColumns:
    """What training rows read from each row's own history (see :mod:`batch.pipeline.row_history`).

    Attributes:
        collab: The rows' collaborative columns; None without collaborative features.
        added_likes: Per row, the user's likes inside the window before the row's state ...
        added_views: ... and views: added to the user's counts at the cutoff, whose like rate is smoothed again.
    """

    collab: FloatArray | None
    added_likes: FloatArray
    added_views: FloatArray

    def add_activity(self, matrix: FloatArray, prior: float) -> None:
        """Add the window's likes and views to the rows' user counts of ``matrix`` and recompute the like rate
        with the same smoothing as the feature set's (:func:`batch.pipeline.features.smoothed_rate`)."""
        views, likes, rate = (
            FEATURE_NAMES.index(name) for name in (Feature.USER_VIEWS, Feature.USER_LIKES, Feature.USER_LIKE_RATE)
        )
        matrix[:, views] += self.added_views
        matrix[:, likes] += self.added_likes
        matrix[:, rate] = smoothed_rate(matrix[:, likes], matrix[:, views], prior, USER_PRIOR_VIEWS)


@dataclass(frozen=True, slots=True)
class LabelledSet:
    """Labelled rows of one window with a model's inputs at the window's start.

    Attributes:
        inputs: What the model reads, cut before the window.
        samples: The labelled rows.
        own_history: What the rows read from each row's own history rather than the cutoff's (training rows),
            computed once for every model; None reads everything at the cutoff.
    """

    inputs: ModelInputs
    samples: pl.DataFrame
    own_history: RowColumns | None = None

    @property
    def features(self) -> FeatureSet:
        """The base feature set of the inputs."""
        return self.inputs.features


def sample_matrix(labelled: LabelledSet) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """The feature matrix and labels of a labelled set's rows."""
    samples = labelled.samples
    users = labelled.features.user_positions(samples[Col.USER_ID].to_numpy())
    posts = labelled.features.post_positions(samples[Col.POST_ID].to_numpy())
    own = labelled.own_history
    if own is not None and own.added_likes.size != samples.height:
        raise ValueError(f"row histories of {own.added_likes.size} rows for {samples.height} rows")
    collab = own.collab if own is not None else None
    matrix = labelled.inputs.pair_matrix(users, posts, moment_features(samples[Col.TIMESTAMP]), collab)
    if own is not None:
        own.add_activity(matrix, labelled.features.like_prior)
    return matrix, samples[Sample.LABEL].to_numpy().astype(np.int8)


def _booster(params: TrainParams, ignored: list[str] | None = None) -> catboost.CatBoost:
    """CatBoost with the training parameters, its loss and a fixed seed; ``ignored`` columns are never split on."""
    options: dict[str, object] = {
        "loss_function": PAIRWISE_LOSS if params.pairwise else POINTWISE_LOSS,
        "iterations": params.iterations,
        "depth": params.depth,
        "learning_rate": params.learning_rate,
        "random_seed": params.seed,
        "thread_count": params.threads,
        "allow_writing_files": False,
        "verbose": False,
    }
    if ignored:
        options["ignored_features"] = ignored
    return catboost.CatBoost(options)


def moment_order(samples: pl.DataFrame) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The rows in the order a pairwise fit reads them, and each one's group in that order, numbered from 0.

    A group is the rows of one user at one moment (a liked post and the never-shown posts that take its time),
    which differ only in the post, as scoring's candidates do. CatBoost needs a group's rows together: they are
    ordered by user, then time, stably, so the samples' own order (by post) holds within a moment.
    """
    users = samples[Col.USER_ID].to_numpy().astype(np.int64)
    times = samples[Col.TIMESTAMP].to_physical().to_numpy()
    order = np.lexsort((times, users))
    if order.size == 0:
        return order, np.zeros(0, dtype=np.int64)
    starts = (np.diff(users[order]) != 0) | (np.diff(times[order]) != 0)
    return order, np.concatenate(([0], np.cumsum(starts, dtype=np.int64)))


def _check_pairs(groups: npt.NDArray[np.int64], labels: npt.NDArray[np.int8]) -> None:
    """Refuse rows where no moment holds both a liked and an unliked post: a pairwise fit has nothing to learn."""
    starts = np.flatnonzero(np.concatenate(([True], np.diff(groups) != 0)))
    if not (np.maximum.reduceat(labels, starts) > np.minimum.reduceat(labels, starts)).any():
        raise ValueError("no moment of the label window holds both a liked and an unliked post: nothing to rank")


def _training_pool(
    train: LabelledSet, params: TrainParams, base: catboost.CatBoost | None = None
) -> tuple[catboost.Pool, int]:
    """The training rows as CatBoost reads them, grouped by moment for a pairwise fit and starting from ``base``'s
    scores when given, and how many of them are liked.

    The feature matrix is dropped on return: the pool holds its own copy of it (quantized, for a pairwise fit), so
    the fit runs without a second one (2.8M rows at full scale: about 0.7 GB, bench/RESULTS.md, stop 49).

    Raises:
        ValueError: The rows hold a single class (too little data in the label window), or, for a pairwise fit,
            no moment with both classes.
    """
    matrix, labels = sample_matrix(train)
    if np.unique(labels).size < 2:
        raise ValueError("the label window holds a single class: choose an earlier as_of or a longer window")
    groups = None
    if params.pairwise:
        order, groups = moment_order(train.samples)
        matrix, labels = matrix[order], labels[order]  # a copy: the unordered matrix is dropped here
        _check_pairs(groups, labels)
    # CatBoost reads a model's columns by position, so a wider matrix serves the base as it is.
    start = None if base is None else base.predict(matrix, prediction_type="RawFormulaVal", thread_count=params.threads)
    pool = catboost.Pool(matrix, labels, feature_names=train.inputs.names, baseline=start, group_id=groups)
    liked = int(labels.sum())
    del matrix, start  # the pool holds its own copies: quantizing beside them would hold both
    if params.pairwise:
        # Quantized here, the fit reads the pool's bins without making its own working copy of the floats: 1M x
        # 64 rows peak 160 MB lower; at full scale control's pairwise fit 3,779 -> 3,308 MiB (bench/RESULTS.md,
        # stop 50). Above 200k rows CatBoost picks borders from a sample of the rows, drawn here with the fit's
        # seed but not the same draw, so the models change by that draw: pointwise fits, under the budget, keep
        # their own.
        pool.quantize(random_seed=params.seed)
    return pool, liked


def tree_count(liked_rows: int, params: TrainParams) -> int:
    """Trees for training rows with ``liked_rows`` likes: one per ``params.likes_per_tree`` of them, at least
    ``params.min_iterations``, at most ``params.iterations`` (all of them when ``likes_per_tree`` is 0)."""
    if params.likes_per_tree <= 0:
        return params.iterations
    wanted = round(liked_rows / params.likes_per_tree)
    return max(min(params.min_iterations, params.iterations), min(params.iterations, wanted))


def fit_model(train: LabelledSet, params: TrainParams) -> catboost.CatBoost:
    """Fit CatBoost with a fixed seed on the training rows, with fewer trees where the rows hold few likes
    (:func:`tree_count`).

    Raises:
        ValueError: The rows hold a single class (too little data in the label window), or, for a pairwise fit,
            no moment with both classes.
    """
    pool, liked = _training_pool(train, params)
    trees = tree_count(liked, params)
    if trees < params.iterations:
        log.info("train: %d trees of at most %d for %d liked rows", trees, params.iterations, liked)
    model = _booster(replace(params, iterations=trees))
    model.fit(pool)
    return model


def _check_extends(base_names: list[str], names: list[str]) -> None:
    """Refuse inputs that do not start with the base model's columns, in its order."""
    for position, (expected, found) in enumerate(zip(base_names, names, strict=False)):
        if expected != found:
            raise ValueError(f"column {position} is {found!r} where the base model reads {expected!r}")
    if len(names) <= len(base_names):
        raise ValueError(f"the inputs add no column to the base model's {len(base_names)}")


def fit_correction_trees(base: catboost.CatBoost, train: LabelledSet, params: TrainParams) -> catboost.CatBoost:
    """Fit trees on what ``base`` leaves unexplained, reading the columns the inputs add to base's and, of base's,
    only ``params.correction_context``; the trees alone (:func:`corrected` adds them to base's).

    The base's scores (log-odds of a pointwise fit) are each row's starting point (CatBoost's baseline), so the
    added trees (``params.correction_iterations``) learn only the added columns' share: over the world family the
    test model fitted this way matched or beat control in 13 of 16 cells, against 9 of 16 fitted from scratch, where
    the few added columns had to compete with control's for the same 200 trees (bench/RESULTS.md).

    Raises:
        ValueError: The inputs do not extend the base model's columns, or the rows hold a single class.
    """
    base_names = list(base.feature_names_ or [])
    _check_extends(base_names, train.inputs.names)
    pool, _ = _training_pool(train, params, base)
    shape = replace(params, iterations=params.correction_iterations, depth=params.correction_depth)
    # The context lets the added columns' weight depend on how popular a post is now (see TrainParams).
    ignored = [name for name in base_names if name not in params.correction_context]
    correction = _booster(shape, ignored=ignored)
    correction.fit(pool)
    return correction


def corrected(base: catboost.CatBoost, trees: catboost.CatBoost, weight: float = 1.0) -> catboost.CatBoost:
    """One model of base's trees followed by a correction's, whose leaf values are scaled by ``weight``."""
    return catboost.sum_models([base, trees], weights=[1.0, weight])


def fit_correction(base: catboost.CatBoost, train: LabelledSet, params: TrainParams) -> catboost.CatBoost:
    """Base's trees followed by a correction's at full weight (:func:`fit_correction_trees`)."""
    return corrected(base, fit_correction_trees(base, train, params))


def probabilities(model: catboost.CatBoost, matrix: FloatArray, threads: int = -1) -> npt.NDArray[np.float64]:
    """The logistic of each row's score: a pointwise model's like probability; a pairwise model's scores only
    order the posts of one moment, so there it is a rank, not a probability (a summed model has no
    ``predict_proba``, and neither keeps its loss)."""
    if not len(matrix):
        return np.zeros(0)
    return 1.0 / (1.0 + np.exp(-predict_raw(model, matrix, threads)))


def calibration(model: catboost.CatBoost, valid: LabelledSet, bins: int = 10) -> list[tuple[float, float]]:
    """Mean predicted like probability against the observed like rate, by decile of prediction; empty when the
    rows are fewer than the bins."""
    if valid.samples.height < bins:
        return []
    matrix, labels = sample_matrix(valid)
    predicted = probabilities(model, matrix)
    order = np.argsort(predicted, kind="stable")
    return [(float(predicted[part].mean()), float(labels[part].mean())) for part in np.array_split(order, bins)]


def hitrate(recommended: npt.NDArray[np.int32], user_ids: npt.NDArray[np.int32], window_likes: pl.DataFrame) -> float:
    """Share of users with any of their recommended posts liked in the window."""
    liked = window_likes.group_by(Col.USER_ID).agg(pl.col(Col.POST_ID).unique())
    lookup = dict(zip(liked[Col.USER_ID].to_list(), liked[Col.POST_ID].to_list(), strict=True))
    relevant = [set(lookup.get(user, [])) for user in user_ids.tolist()]
    hits = hit_matrix(recommended.astype(np.int64), relevant)
    return float(hitrate_per_user(hits).mean()) if len(relevant) else float("nan")


def evaluation_users(valid: LabelledSet, window_likes: pl.DataFrame, limit: int, seed: int) -> npt.NDArray[np.int32]:
    """Users with a like in the validation window (the only ones a hit is possible for), sampled to ``limit``."""
    known = pl.DataFrame({Col.USER_ID: valid.features.user_ids})
    users = window_likes.select(Col.USER_ID).unique().join(known, on=Col.USER_ID).sort(Col.USER_ID)
    ids = users[Col.USER_ID].to_numpy().astype(np.int32)
    if ids.size > limit:
        ids = np.sort(np.random.default_rng(seed).choice(ids, size=limit, replace=False))
    return ids


def _safe_auc(labels: npt.NDArray[np.int8], predicted: npt.NDArray[np.float64]) -> float:
    return float(roc_auc_score(labels, predicted)) if np.unique(labels).size == 2 else float("nan")


def evaluate(
    model: catboost.CatBoost, valid: LabelledSet, window_likes: pl.DataFrame, params: TrainParams
) -> dict[str, float]:
    """AUC (and, for a pointwise model, log loss) on the validation rows; hitrate@5 of the model and of popularity.

    Args:
        model: The trained model.
        valid: Validation rows, made like the training rows, with features before the window.
        window_likes: (user_id, post_id) liked in the validation window.
        params: Training parameters (evaluation users, seed, threads).
    """
    matrix, labels = sample_matrix(valid)
    predicted = probabilities(model, matrix, params.threads)
    users = evaluation_users(valid, window_likes, params.max_eval_users, params.seed)
    top = score_users(model, valid.inputs, users, HITRATE_AT, threads=params.threads)
    popular = popular_top(valid.features, users, HITRATE_AT)
    figures = {
        "auc": _safe_auc(labels, predicted),
        "hitrate_at_5": hitrate(top.post_ids, users, window_likes),
        "popular_hitrate_at_5": hitrate(popular.post_ids, users, window_likes),
        "eval_users": float(users.size),
        "valid_rows": float(labels.size),
    }
    if not params.pairwise:  # a pairwise score has no scale across users for a log loss to read
        figures["logloss"] = float(log_loss(labels, predicted, labels=[0, 1])) if labels.size else float("nan")
    return figures


def own_history_columns(sets: FeatureSets, samples: Samples) -> RowColumns | None:
    """What the training rows read from their own history (the same for every model); None when the samples have
    no histories."""
    histories = samples.train_histories
    if histories is None:
        return None
    collab = sets.collab.get(Cutoff.TRAIN)
    posts = sets.base[Cutoff.TRAIN].post_positions(samples.train[Col.POST_ID].to_numpy())
    states = histories.state_of_row
    return RowColumns(
        collab=collab.history_pair_matrix(histories, posts) if collab is not None else None,
        added_likes=histories.state_likes[states].astype(np.float32),
        added_views=histories.state_views[states].astype(np.float32),
    )


@dataclass(frozen=True, slots=True)
class Fitted:
    """What the train step fitted, by model name: control (or every model, fitted on its own) and, for the models
    fitted on control's trees, their corrections alone.

    Attributes:
        wanted: The models' names, in the order the build asked for them.
        standalone: Models fitted on their own (control, or all of them without ``on_control``).
        corrections: A correction's trees (:func:`fit_correction_trees`) by the name of the model they make with
            control's.
    """

    wanted: tuple[str, ...]
    standalone: dict[str, catboost.CatBoost]
    corrections: dict[str, catboost.CatBoost]

    def models(self, weights: Mapping[str, float] | None = None) -> dict[str, catboost.CatBoost]:
        """Every wanted model; a corrected one as control's trees plus its correction at its weight (1 unless
        ``weights`` names it)."""
        weights = weights or {}
        made = dict(self.standalone)
        for name, trees in self.corrections.items():
            made[name] = corrected(self.standalone[CONTROL], trees, weights.get(name, 1.0))
        return {name: made[name] for name in self.wanted}


def train_models(sets: FeatureSets, samples: Samples, params: TrainParams, wanted: tuple[str, ...]) -> Fitted:
    """Step train: fit CatBoost on the training rows once per wanted model (the same rows, the same parameters).

    With ``params.on_control`` every other model is control's trees plus a correction (:func:`fit_correction`):
    control is fitted first, even when only the others are wanted.
    """
    with step("train") as done:
        own = own_history_columns(sets, samples)

        def labelled(name: str) -> LabelledSet:
            return LabelledSet(sets.inputs(Cutoff.TRAIN, name), samples.train, own)

        if params.on_control and wanted != (CONTROL,):
            control = fit_model(labelled(CONTROL), params)
            corrections = {
                name: fit_correction_trees(control, labelled(name), params) for name in wanted if name != CONTROL
            }
            fitted = Fitted(wanted, {CONTROL: control}, corrections)
        else:
            # The model with the most columns first: CatBoost's allocator keeps much of a fit's memory, which the
            # smaller fit after it reuses (3M rows: peak 130 MB lower than the other way round).
            by_width = sorted(wanted, key=lambda name: -len(sets.inputs(Cutoff.TRAIN, name).names))
            fitted = Fitted(wanted, {name: fit_model(labelled(name), params) for name in by_width}, {})
        done.rows = samples.train.height
    return fitted


@dataclass(frozen=True, slots=True)
class Validation:
    """What validation measured: figures by name (``test_`` prefixed for the test model) and the calibration."""

    metrics: dict[str, float]
    calibration: list[tuple[float, float]]


def validate_models(
    models: Mapping[str, catboost.CatBoost],
    sets: FeatureSets,
    samples: Samples,
    window_likes: pl.DataFrame,
    params: TrainParams,
) -> Validation:
    """Step evaluate: AUC, log loss (pointwise models) and hitrate@5 of each model on the validation window."""
    with step("evaluate") as done:
        metrics: dict[str, float] = {}
        for name, model in models.items():
            valid = LabelledSet(sets.inputs(Cutoff.VALID, name), samples.valid)
            prefix = "" if name == CONTROL else f"{name}_"  # test_..., and test_without_nn_... in an ablation
            metrics |= {f"{prefix}{key}": value for key, value in evaluate(model, valid, window_likes, params).items()}
        base = LabelledSet(sets.inputs(Cutoff.VALID, CONTROL), samples.valid)
        # Calibration reads scores as probabilities, which a pairwise model's are not.
        curve = calibration(models[CONTROL], base) if CONTROL in models and not params.pairwise else []
        log.info("validation: %s", format_figures(metrics, separator=" "))
        done.rows = samples.valid.height
    return Validation(metrics, curve)
