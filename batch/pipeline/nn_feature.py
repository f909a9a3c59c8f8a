"""The ``test`` model's neural sequence score: a SASRec-style model (``batch.ranking.sequence``) trained at each
cutoff on the feed before it, read out as a :class:`UserPostSpace` so it scores in blocks like the taste cosine.

The feed is read once for the cutoffs of a call (a build makes one cutoff at a time): the views of the
``lookback_days`` before the earliest cutoff up to the latest, reduced chunk by chunk to each user's last ``length``
views before each cutoff, so memory follows users x length, not the feed. The score is each user's z-score over the
catalog (:meth:`SequenceVectors.standardized`), so that it means the same at every cutoff's freshly trained model.

Torch comes with the ``dl`` extra; on the lean install the feature is left out with one warning, and the ``test``
model is trained without it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import polars as pl
from sqlalchemy.engine import Engine

from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.embed import PostEmbeddings
from batch.pipeline.embed_features import EmbeddingFeatureSet, UserPostSpace
from batch.pipeline.extract import copy_query
from batch.pipeline.features import FeatureSet
from batch.pipeline.source import Source
from batch.pipeline.steps import step
from batch.ranking.positions import IdArray
from batch.ranking.sequence.histories import build_histories, mark_liked
from batch.ranking.sequence.params import SequenceParams
from common.columns import Action, Col, Table
from common.logs import release_free_heap, rss_mb

log = logging.getLogger(__name__)

NN_SCORE: Final = "nn_score"
# Rows reduced at once by :func:`last_views`. At full scale the streamed feed's union is 32M rows; polars' sort and
# per-user tail over all of them at once rose 4.9 GB above the frame (the build's peak: 7.0 GB), over eighths of the
# users 1.0 GB, in a third of the time (56 -> 19 s). The last reduction reads 21M rows: in slices of 1M rows instead
# of 4M, the view read's peak fell from 1,588 to 1,171 MB, in 54 s instead of 52.
ROWS_PER_PART: Final = 1_000_000
# Not an A/B group: the ``test`` model without the sequence score, trained beside ``test`` on the same rows when an
# evaluation measures what the score adds (``postrec evaluate --nn-ablation``).
TEST_WITHOUT_NN: Final = "test_without_nn"
VIEW_SCHEMA: Final = {Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32(), Col.POST_ID: pl.Int32()}


def torch_missing() -> str | None:
    """Why torch cannot be imported (the lean install), or None when it can."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


@functools.cache
def warn_missing_torch_once(reason: str) -> None:
    """Say once per process that the ``test`` model goes without the sequence score."""
    log.warning(
        "the test model is trained without %s: torch is not installed (%s); make install EXTRAS=dev,dl adds it",
        NN_SCORE,
        reason,
    )


def nn_feature_enabled(wanted: bool) -> bool:
    """Whether a run computes the sequence score: asked for (``--nn-feature``) and torch importable."""
    if not wanted:
        return False
    reason = torch_missing()
    if reason is not None:
        warn_missing_torch_once(reason)
    return reason is None


def recent_views(engine: Engine, cutoffs: Sequence[datetime], params: SequenceParams) -> pl.DataFrame:
    """View rows (timestamp, user_id, post_id): each user's last ``params.length`` views before each cutoff, among
    those of the ``params.lookback_days`` before the earliest cutoff."""
    start = min(cutoffs) - timedelta(days=params.lookback_days)
    sql = (
        f'SELECT "{Col.TIMESTAMP}", {Col.USER_ID}, {Col.POST_ID} FROM {Table.FEED}'
        f""" WHERE {Col.ACTION} = '{Action.VIEW}' AND "{Col.TIMESTAMP}" >= %(start)s"""
        f' AND "{Col.TIMESTAMP}" < %(end)s'
    )
    lookback = timedelta(days=params.lookback_days)
    reduce = functools.partial(last_views, cutoffs=tuple(cutoffs), length=params.length, lookback=lookback)
    return copy_query(engine, sql, VIEW_SCHEMA, {"start": start, "end": max(cutoffs)}, reduce=reduce)


def last_views(
    frame: pl.DataFrame,
    cutoffs: tuple[datetime, ...],
    length: int,
    lookback: timedelta = timedelta(days=30),
    rows_per_part: int = ROWS_PER_PART,
) -> pl.DataFrame:
    """Each user's last ``length`` rows of the ``lookback`` before each cutoff, together. Applying it to chunks and
    then to their union gives what applying it to all rows at once gives, so the feed can be reduced as it streams.
    Each cutoff's rows depend on that cutoff alone, so a rescore at as_of reads what the build read for it.

    A user's rows depend on no other user's, so a frame of more than ``rows_per_part`` rows is reduced by slices of
    users (``user_id`` modulo the slice count), one at a time; the rows come out grouped by slice.
    """
    parts = -(-frame.height // rows_per_part)
    if parts <= 1:
        return _last_views_together(frame, cutoffs, length, lookback)
    slices = (frame.filter(pl.col(Col.USER_ID) % parts == part) for part in range(parts))
    return pl.concat([_last_views_together(rows, cutoffs, length, lookback) for rows in slices])


def _last_views_together(
    frame: pl.DataFrame, cutoffs: tuple[datetime, ...], length: int, lookback: timedelta
) -> pl.DataFrame:
    ordered = frame.sort([Col.USER_ID, Col.TIMESTAMP, Col.POST_ID])
    parts = [
        ordered.filter(in_window(cutoff, lookback)).group_by(Col.USER_ID, maintain_order=True).tail(length)
        for cutoff in cutoffs
    ]
    return pl.concat(parts).unique(maintain_order=True)


def in_window(cutoff: datetime, lookback: timedelta) -> pl.Expr:
    """Rows of the ``lookback`` before the cutoff."""
    return (pl.col(Col.TIMESTAMP) < cutoff) & (pl.col(Col.TIMESTAMP) >= cutoff - lookback)


def nn_space(
    views: pl.DataFrame,
    likes: pl.DataFrame,
    embeddings: PostEmbeddings,
    user_ids: IdArray,
    cutoff: datetime,
    params: SequenceParams,
) -> UserPostSpace:
    """The sequence model trained on the rows before ``cutoff`` and read out at it, as a user-post space.

    Args:
        views: View rows (timestamp, user_id, post_id); only those before the cutoff are read.
        likes: Like rows (timestamp, user_id, post_id); only those before the cutoff are read.
        embeddings: The catalog's text vectors, the starting point of the post vectors.
        user_ids: Sorted ids of every user (a user without views scores posts by their bias alone).
        cutoff: Nothing at or after it is seen.
        params: The model's settings and seed.
    """
    from batch.ranking.sequence.readout import read_vectors
    from batch.ranking.sequence.training import train_model

    started = time.perf_counter()
    window = views.filter(in_window(cutoff, timedelta(days=params.lookback_days)))
    histories = build_histories(mark_liked(window, likes, cutoff), user_ids, embeddings.post_ids, params.length)
    model = train_model(histories, embeddings.vectors, params)
    raw = read_vectors(model, histories, params.threads)
    spreads = raw.score_spreads()
    vectors = raw.standardized(spreads)
    log.info(
        "nn feature at %s: users=%d with_views=%d raw_score_spread=%.3f seconds=%.1f rss_mb=%.0f",
        cutoff.isoformat(sep=" "),
        user_ids.size,
        int((histories.events() > 0).sum()),
        float(np.median(spreads)),
        time.perf_counter() - started,
        rss_mb(),
    )
    users, posts = vectors.user_ids.astype(np.int32), vectors.post_ids.astype(np.int32)
    return UserPostSpace(NN_SCORE, users, vectors.user_vectors, posts, vectors.post_vectors)


def add_nn_feature(
    engine: Engine,
    source: Source,
    embeddings: PostEmbeddings,
    sets: Mapping[Cutoff, EmbeddingFeatureSet],
    base: Mapping[Cutoff, FeatureSet],
    params: SequenceParams,
) -> dict[Cutoff, EmbeddingFeatureSet]:
    """The embedding feature sets with the sequence score added as their last user-post space.

    Args:
        engine: Engine on the source database (the views are read from it).
        source: What the build read (the likes before as_of).
        embeddings: The catalog's text vectors.
        sets: The embedding feature sets by cutoff.
        base: The base feature sets at the same cutoffs (their users and cutoff times).
        params: The sequence model's settings.
    """
    with step("nn feature") as done:
        views = recent_views(engine, [features.cutoff for features in base.values()], params)
        log.info("nn feature: views=%d read for %d cutoffs", views.height, len(base))
        release_free_heap()
        spaces: dict[Cutoff, UserPostSpace] = {}
        for cutoff, features in base.items():
            spaces[cutoff] = nn_space(views, source.likes, embeddings, features.user_ids, features.cutoff, params)
            # glibc kept what a cutoff's training and read-out freed (torch's tensors, the histories): at full
            # scale RSS rose 3,350 -> 3,591 -> 3,680 MB over the cutoffs, 2,579 MB once trimmed, and the step
            # peaked at 4,408 MB on top of it.
            release_free_heap()
        done.rows = views.height
    return {cutoff: replace(features, spaces=(*features.spaces, spaces[cutoff])) for cutoff, features in sets.items()}
