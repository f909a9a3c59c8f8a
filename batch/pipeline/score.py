"""Exhaustive scoring: every user against every post, keeping the top K per user.

:func:`score_users` is the shard function: ``postrec build`` calls it over all users in blocks, and the RQ
worker can call it on any slice of users. Memory is bounded by the block size, not by users x posts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final

import catboost
import numpy as np
import numpy.typing as npt
import polars as pl

from batch.pipeline.artifacts import MissingArtifactError
from batch.pipeline.features import (
    POST_FEATURES,
    Feature,
    FeatureSet,
    IntArray,
    moment_features,
    serving_moment,
)
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.prepared import Prepared
from batch.pipeline.segment_popularity import SegmentLift, tilt_towards_segment, without_history
from batch.pipeline.steps import step
from batch.ranking.positions import IndexArray, csr_entries
from batch.ranking.topk import NO_POST, TopK, merge_top, top_k
from common.ab import CONTROL, TEST, assign_group
from common.logs import progress
from common.settings import Settings

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
# Rows per predict call: about 110 MB of float32 features at 28 columns, large enough that per-call overhead
# vanishes, small enough that a block's matrix stays well inside the memory budget.
BLOCK_ROWS: Final = 1_000_000


def _liked_mask(features: FeatureSet, users: IndexArray) -> tuple[IndexArray, IndexArray]:
    return csr_entries(features.liked_indptr, features.liked_posts, users)


def _viewed_mask(features: FeatureSet, users: IndexArray) -> tuple[IndexArray, IndexArray]:
    return csr_entries(features.viewed_indptr, features.viewed_posts, users)


def predict_raw(model: catboost.CatBoost, matrix: FloatArray, threads: int = -1) -> npt.NDArray[np.float64]:
    """CatBoost's raw scores (log-odds) of a feature matrix."""
    raw: npt.NDArray[np.float64] = model.predict(matrix, prediction_type="RawFormulaVal", thread_count=threads)
    return raw


def _score_blocks(
    model: catboost.CatBoost,
    inputs: ModelInputs,
    blocks: Sequence[IndexArray],
    moment: FloatArray,
    k: int,
    threads: int,
) -> Iterator[tuple[IntArray, FloatArray]]:
    """Each block's top k; unless ``threads`` is 1, the next block's matrix is built in a second thread while
    CatBoost predicts this one.

    Building a matrix is numpy and scipy work on one core, during which CatBoost's threads would wait; both release
    the GIL, so the two overlap. On 2 quiet cores (bench/score.py, a 39-column control model, full-scale shape)
    scoring went from 3.85 to 4.35 M pairs/s, 0.48 to 0.55 of CatBoost's own predict. At most two blocks' matrices
    are alive: one more than before, 100 MB for ``control``'s 39 columns, about 250 MB for ``test``'s at full scale
    (the build's score step peaked at 2,981 MiB, from 2,736 MB).
    """
    if threads == 1 or len(blocks) < 2:
        for users in blocks:
            yield _block_top(inputs, users, predict_raw(model, inputs.block_matrix(users, moment), threads), k)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="postrec-block") as pool:
        pending: Future[FloatArray] = pool.submit(inputs.block_matrix, blocks[0], moment)
        for index, users in enumerate(blocks):
            matrix = pending.result()
            if index + 1 < len(blocks):
                pending = pool.submit(inputs.block_matrix, blocks[index + 1], moment)
            raw = predict_raw(model, matrix, threads)
            del matrix  # freed before the next block's is asked for
            yield _block_top(inputs, users, raw, k)


def _block_top(
    inputs: ModelInputs, users: IndexArray, raw: npt.NDArray[np.float64], k: int
) -> tuple[IntArray, FloatArray]:
    """The top k of a block's raw scores, leaving out the posts each user was shown or liked."""
    features = inputs.features
    scores = raw.astype(np.float32).reshape(users.size, features.post_ids.size)
    if inputs.collab is not None:
        tilt_users_without_history(scores, features, users, inputs.collab.segment_lift)
    # A post already shown is rarely liked later (on the real data and on every world), and the training rows hold
    # almost none, so the model cannot learn it: the lists leave them out, as the seen-aware baselines do.
    scores[_viewed_mask(features, users)] = -np.inf
    return _best_unliked(features, users, scores, k)


def tilt_users_without_history(scores: FloatArray, features: FeatureSet, users: IndexArray, table: SegmentLift) -> None:
    """Tilt the scores (users x posts log-odds) of each user without history towards what users of the same gender
    and age band, and of the same operating system, like (see :mod:`batch.pipeline.segment_popularity`); other
    users' are left as they are."""
    cold = without_history(features, users)
    if cold.any():
        scores[cold] = tilt_towards_segment(scores[cold], table.user_lift(features.users[users[cold]]), table)


def _best_unliked(features: FeatureSet, users: IndexArray, scores: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """Top k of a (users x posts) score block, after leaving out each user's liked posts (scores is modified)."""
    scores[_liked_mask(features, users)] = -np.inf
    best = top_k(scores, k)
    best_scores = np.take_along_axis(scores, best, axis=1)
    post_ids = np.where(np.isfinite(best_scores), features.post_ids[best], NO_POST).astype(np.int32)
    return post_ids, best_scores


def block_users(n_posts: int, block_rows: int = BLOCK_ROWS) -> int:
    """How many users one block holds so that it has about ``block_rows`` rows."""
    return max(1, block_rows // max(n_posts, 1))


def score_users(
    model: catboost.CatBoost,
    inputs: ModelInputs,
    user_ids: npt.ArrayLike,
    k: int,
    *,
    block_rows: int = BLOCK_ROWS,
    threads: int = -1,
    show_progress: bool = False,
) -> TopK:
    """Score every post for each user and keep the k best, leaving out posts the user was shown or liked before the
    cutoff (a user who saw the whole catalog gets an empty list; the API tops it up with popular posts).

    Args:
        model: A CatBoost model trained on ``inputs.names``.
        inputs: The model's inputs at the scoring cutoff (its feature set's shown and liked posts are left out).
        user_ids: The users to score, e.g. one shard; each must be in the inputs' feature set.
        k: How many posts to keep per user.
        block_rows: Rows of one predict call; bounds memory.
        threads: CatBoost threads (-1: all cores); other than 1, the next block's features are built in a second
            thread meanwhile.
        show_progress: Report progress per block (for long runs).

    Returns:
        The top k per user, in the order of ``user_ids``.
    """
    features = inputs.features
    users = features.user_positions(user_ids)
    k = min(k, features.post_ids.size)
    moment = moment_features_at(features)
    size = block_users(features.post_ids.size, block_rows)
    user_blocks = [users[start : start + size] for start in range(0, users.size, size)]
    scored = _score_blocks(model, inputs, user_blocks, moment, k, threads)
    if show_progress:
        scored = progress(scored, len(user_blocks), "scoring", log)
    blocks = list(scored)
    empty_ids, empty_scores = np.zeros((0, k), np.int32), np.zeros((0, k), np.float32)
    return TopK(
        user_ids=features.user_ids[users],
        post_ids=np.concatenate([ids for ids, _ in blocks]) if blocks else empty_ids,
        scores=np.concatenate([scores for _, scores in blocks]) if blocks else empty_scores,
    )


def moment_features_at(features: FeatureSet) -> FloatArray:
    """The time features scoring uses for a feature set (see :func:`batch.pipeline.features.serving_moment`)."""
    moment: FloatArray = moment_features(pl.Series([serving_moment(features.cutoff)]))[0]
    return moment


def popular_scores(features: FeatureSet) -> FloatArray:
    """The ``popular`` model: a post's like count before the cutoff."""
    scores: FloatArray = features.posts[:, POST_FEATURES.index(Feature.POST_LIKES)].astype(np.float32)
    return scores


def popular_top(features: FeatureSet, user_ids: npt.ArrayLike, k: int, block_rows: int = BLOCK_ROWS) -> TopK:
    """Posts by like count (ties: smaller post id), leaving out what each user liked before the cutoff; users are
    ranked in blocks of about ``block_rows`` (user, post) rows."""
    users = features.user_positions(user_ids)
    k = min(k, features.post_ids.size)
    scores, n_posts = popular_scores(features), features.post_ids.size
    post_ids, best_scores = np.full((users.size, k), NO_POST, dtype=np.int32), np.empty((users.size, k), np.float32)
    # In blocks like the models' scoring, so the memory follows the block, not the users asked about.
    size = block_users(n_posts, block_rows)
    for start in range(0, users.size, size):
        block = slice(start, start + size)
        block_scores = np.broadcast_to(scores, (users[block].size, n_posts)).copy()
        post_ids[block], best_scores[block] = _best_unliked(features, users[block], block_scores, k)
    return TopK(user_ids=features.user_ids[users], post_ids=post_ids, scores=best_scores)


def popular_order(features: FeatureSet) -> IntArray:
    """The whole catalog by like count before the cutoff, ties by post id: the fallback list."""
    order = top_k(popular_scores(features)[None, :], features.post_ids.size)[0]
    ranked: IntArray = features.post_ids[order]
    return ranked


def split_users(user_ids: npt.NDArray[np.int32], salt: str, control_percent: int) -> dict[str, npt.NDArray[np.int32]]:
    """The users of each A/B group (see :func:`common.ab.assign_group`), in their given order."""
    groups = np.array([assign_group(user, salt, control_percent) for user in user_ids.tolist()], dtype=object)
    return {name: user_ids[groups == name] for name in (CONTROL, TEST)}


def score_group(
    prepared: Prepared, name: str, user_ids: npt.ArrayLike, k: int, threads: int = -1, show_progress: bool = False
) -> TopK:
    """Top k of the users with the model of group ``name`` on the features at as_of.

    Raises:
        MissingArtifactError: The run holds no model of that group.
    """
    models = prepared.models.by_group
    if name not in models:
        raise MissingArtifactError(f"no {name} model in this run: build with a split that serves {name}")
    inputs = prepared.inputs(name)
    return score_users(models[name], inputs, user_ids, k, threads=threads, show_progress=show_progress)


def score_all(prepared: Prepared, settings: Settings, k: int, threads: int) -> TopK:
    """Step score: exhaustive top-K of every user at as_of, each user by the model of its A/B group."""
    with step("score") as done:
        features = prepared.score_features
        groups = split_users(features.user_ids, settings.ab_salt, settings.control_percent)
        parts = [score_group(prepared, name, users, k, threads, True) for name, users in groups.items() if users.size]
        first = next(iter(prepared.models.by_group))
        rankings = merge_top(parts) if parts else score_group(prepared, first, [], 1)
        cold = int(without_history(features, np.arange(features.user_ids.size)).sum())
        sizes = " ".join(f"{name}_users={users.size}" for name, users in groups.items())
        log.info("scored: %s without_history=%d", sizes, cold)
        done.rows = int(rankings.user_ids.size * features.post_ids.size)
    return rankings
