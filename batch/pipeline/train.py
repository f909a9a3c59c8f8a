"""Training and validation of the ``control`` and ``test`` models on a temporal split.

    ... history ...  | label window          | validation window |
    features < label_start   labels in [label_start, valid_start)
                             features < valid_start   labels in [valid_start, as_of)

Training rows take their features from before the label window, validation rows from before the validation
window: no row's features see the time of its label or anything after it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Final

import catboost
import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.metrics import log_loss, roc_auc_score

from batch.pipeline.embed_features import EmbeddingFeatureSet
from batch.pipeline.features import FEATURE_NAMES, FeatureSet, FloatArray, moment_features, pair_matrix
from batch.pipeline.samples import Sample
from batch.pipeline.score import popular_top, score_users
from batch.ranking.metrics import hit_matrix, hitrate_per_user
from common.columns import Col

log = logging.getLogger(__name__)

HITRATE_AT: Final = 5


@dataclass(frozen=True, slots=True)
class Windows:
    """The temporal split's boundaries (label window, validation window) ending at ``as_of``."""

    label_start: datetime
    valid_start: datetime
    as_of: datetime

    def to_dict(self) -> dict[str, str]:
        """ISO strings, for metadata."""
        return {name: value.isoformat() for name, value in asdict(self).items()}


def plan_windows(as_of: datetime, label_days: float, valid_days: float) -> Windows:
    """Validation window = the last ``valid_days`` before as_of, label window = the ``label_days`` before it."""
    valid_start = as_of - timedelta(days=valid_days)
    return Windows(label_start=valid_start - timedelta(days=label_days), valid_start=valid_start, as_of=as_of)


@dataclass(frozen=True, slots=True)
class TrainParams:
    """Knobs of training. Tree count and depth bound exhaustive scoring's speed (see bench/score.py).

    Attributes:
        iterations: Trees.
        depth: Depth of each (oblivious) tree.
        learning_rate: Boosting step.
        unseen_per_positive: Never-shown negatives per liked post in the training rows.
        label_days: Length of the label window.
        valid_days: Length of the validation window.
        max_train_rows: Expected training rows; users are sampled to fit (memory budget).
        max_eval_users: Users ranked exhaustively for hitrate@5 on the validation window.
        seed: Seed of sampling and of CatBoost.
        threads: CatBoost threads (-1: all cores).
    """

    iterations: int = 200
    depth: int = 6
    learning_rate: float = 0.1
    unseen_per_positive: float = 8.0
    label_days: float = 14.0
    valid_days: float = 7.0
    max_train_rows: int = 3_000_000
    max_eval_users: int = 5_000
    seed: int = 42
    threads: int = -1


@dataclass(frozen=True, slots=True)
class LabelledSet:
    """Samples of one window with the feature set at the window's start.

    Attributes:
        features: The ``control`` features at the window's start.
        samples: The labelled rows.
        extra: The embedding features at the same cutoff: set for the ``test`` model, None for ``control``.
    """

    features: FeatureSet
    samples: pl.DataFrame
    extra: EmbeddingFeatureSet | None = None

    @property
    def feature_names(self) -> list[str]:
        """Column names of :func:`sample_matrix`'s matrix."""
        return [*FEATURE_NAMES, *(self.extra.names if self.extra is not None else ())]


def sample_matrix(labelled: LabelledSet) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """The feature matrix and labels of a labelled set's rows."""
    samples = labelled.samples
    users = labelled.features.user_positions(samples[Col.USER_ID].to_numpy())
    posts = labelled.features.post_positions(samples[Col.POST_ID].to_numpy())
    extra = labelled.extra
    moments = moment_features(samples[Col.TIMESTAMP])
    matrix = pair_matrix(labelled.features, users, posts, moments, len(extra.names) if extra is not None else 0)
    if extra is not None:
        matrix[:, len(FEATURE_NAMES) :] = extra.pair_matrix(samples[Col.USER_ID], samples[Col.POST_ID])
    return matrix, samples[Sample.LABEL].to_numpy().astype(np.int8)


def fit_model(train: LabelledSet, params: TrainParams) -> catboost.CatBoostClassifier:
    """Fit CatBoost with a fixed seed on the training rows.

    Raises:
        ValueError: The rows hold a single class (too little data in the label window).
    """
    matrix, labels = sample_matrix(train)
    if np.unique(labels).size < 2:
        raise ValueError("the label window holds a single class: choose an earlier as_of or a longer window")
    model = catboost.CatBoostClassifier(
        iterations=params.iterations,
        depth=params.depth,
        learning_rate=params.learning_rate,
        random_seed=params.seed,
        thread_count=params.threads,
        allow_writing_files=False,
        verbose=False,
    )
    model.fit(catboost.Pool(matrix, labels, feature_names=train.feature_names))
    return model


def calibration(model: catboost.CatBoost, valid: LabelledSet, bins: int = 10) -> list[tuple[float, float]]:
    """Mean predicted like probability against the observed like rate, by decile of prediction; empty when the
    rows are fewer than the bins."""
    if valid.samples.height < bins:
        return []
    matrix, labels = sample_matrix(valid)
    predicted = model.predict(matrix, prediction_type="Probability")[:, 1]
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
    """AUC and logloss on the shown rows of the validation window; hitrate@5 of the model and of popularity.

    Args:
        model: The trained model.
        valid: Validation rows (only shown ones count for AUC and logloss) with features before the window.
        window_likes: (user_id, post_id) liked in the validation window.
        params: Training parameters (evaluation users, seed, threads).
    """
    shown = replace(valid, samples=valid.samples.filter(pl.col(Sample.SHOWN) == 1))
    matrix, labels = sample_matrix(shown)
    predicted = model.predict_proba(matrix, thread_count=params.threads)[:, 1] if labels.size else np.zeros(0)
    users = evaluation_users(valid, window_likes, params.max_eval_users, params.seed)
    top = score_users(model, valid.features, users, HITRATE_AT, threads=params.threads, extra=valid.extra)
    popular = popular_top(valid.features, users, HITRATE_AT)
    return {
        "auc": _safe_auc(labels, predicted),
        "logloss": float(log_loss(labels, predicted, labels=[0, 1])) if labels.size else float("nan"),
        "hitrate_at_5": hitrate(top.post_ids, users, window_likes),
        "popular_hitrate_at_5": hitrate(popular.post_ids, users, window_likes),
        "eval_users": float(users.size),
        "valid_rows": float(labels.size),
    }
