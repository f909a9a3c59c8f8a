"""Labelled (user, post, time) rows for training and validation, from one time window of the feed.

Scoring ranks every post for every user among the posts never shown to them, so the training rows are the posts
liked in the window (label 1) and posts never shown to the user before the window's end (label 0); how many
never-shown posts join per liked one is the ``unseen_per_positive`` parameter. Posts shown in the window and not
liked are left out of training (``TrainParams.skipped_negatives``): they are the feed's own picks, much like the
posts the user goes on to like (as popular, as recent), so as negatives they taught the model the feed's choices
rather than the user's taste (on the bursty world's per-user hold-out, `control` 0.497 with them, 0.529 without).
Each never-shown negative takes the moment of one of its user's liked rows: scoring ranks every post for one user at
one moment, so a negative reads the same history, era and clock columns as a positive and only the post tells them
apart. Against the moment of any of the user's views (stop 47, the world family's 20 cells, bench/RESULTS.md):
`control` / `test` +0.003 / +0.001 on average, both above the best baseline in one cell more, `test` >= `control` in
four fewer.
Validation rows are made the same way from the validation window, so that its AUC and log loss measure what the model
is trained for (on shown posts alone they read 0.50 once skipped posts left training).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
from sqlalchemy.engine import Engine

from batch.pipeline.cutoffs import Cutoff, Windows
from batch.pipeline.extract import copy_query
from batch.pipeline.features import FeatureSet
from batch.pipeline.options import TrainParams
from batch.pipeline.row_history import RowHistories, row_histories
from batch.pipeline.steps import step
from common.columns import Action, Col, Table

log = logging.getLogger(__name__)

# Sizing the user sample before any count is known: a little above the real like rate, so rows stay under the cap.
EXPECTED_LIKE_RATE: Final = 0.15
# Users are sampled in PostgreSQL by a hash of their id and the seed, in thousandths.
SAMPLE_BASE: Final = 1000


class Sample:
    """Columns of a sample frame beside user_id, post_id and timestamp."""

    LABEL: Final = "label"
    SHOWN: Final = "shown"


SAMPLE_SCHEMA: Final = {
    Col.USER_ID: pl.Int32(),
    Col.POST_ID: pl.Int32(),
    Col.TIMESTAMP: pl.Datetime("us"),
    Sample.LABEL: pl.Int8(),
    Sample.SHOWN: pl.Int8(),
}
VIEW_SCHEMA: Final = {
    Col.TIMESTAMP: pl.Datetime("us"),
    Col.USER_ID: pl.Int32(),
    Col.POST_ID: pl.Int32(),
    Col.TARGET: pl.Int8(),
}
# (user ids, post ids) -> whether each pair was shown before the end of the window, e.g. ``FeatureSet.was_shown``
# of the feature set cut at the window's end.
SeenTest = Callable[[npt.NDArray[np.int32], npt.NDArray[np.int32]], npt.NDArray[np.bool_]]


def _user_sample_sql(alias: str) -> str:
    # md5 of id and seed together, so that another seed keeps other users (a seed added to a multiplicative hash
    # only shifts the kept range).
    hashed = f"('x' || left(md5({alias}.{Col.USER_ID} || ':' || %(seed)s), 7))::bit(28)::int"
    return f"mod({hashed}, {SAMPLE_BASE}) < %(per_mille)s"


def load_window_views(engine: Engine, start: datetime, end: datetime, per_mille: int, seed: int) -> pl.DataFrame:
    """View rows (timestamp, user_id, post_id, target) with ``start <= timestamp < end`` of sampled users."""
    sql = (
        f'SELECT f."{Col.TIMESTAMP}", f.{Col.USER_ID}, f.{Col.POST_ID}, f.{Col.TARGET} FROM {Table.FEED} f'
        f' WHERE f."{Col.TIMESTAMP}" >= %(start)s AND f."{Col.TIMESTAMP}" < %(end)s'
        f" AND f.{Col.ACTION} = '{Action.VIEW}' AND {_user_sample_sql('f')}"
    )
    params = {"start": start, "end": end, "per_mille": per_mille, "seed": seed}
    return copy_query(engine, sql, VIEW_SCHEMA, params)


def count_window_views(engine: Engine, start: datetime, end: datetime) -> int:
    """Number of view rows in the window, to size the user sample."""
    sql = (
        f'SELECT count(*) FROM {Table.FEED} f WHERE f."{Col.TIMESTAMP}" >= %(start)s'
        f" AND f.\"{Col.TIMESTAMP}\" < %(end)s AND f.{Col.ACTION} = '{Action.VIEW}'"
    )
    return int(copy_query(engine, sql, {"n": pl.Int64()}, {"start": start, "end": end}).item())


def shown_samples(views: pl.DataFrame) -> pl.DataFrame:
    """One row per (user, post) shown in the window: first view time, label 1 when any view was liked."""
    return (
        views.group_by(Col.USER_ID, Col.POST_ID)
        .agg(
            pl.col(Col.TIMESTAMP).min(),
            pl.col(Col.TARGET).fill_null(0).max().cast(pl.Int8).alias(Sample.LABEL),
        )
        .with_columns(pl.lit(1, pl.Int8).alias(Sample.SHOWN))
        .select(SAMPLE_SCHEMA.keys())
        .sort(Col.USER_ID, Col.POST_ID)
    )


def _draws(shown: pl.DataFrame, per_positive: float) -> tuple[pl.DataFrame, pl.Series]:
    """Per user with a like: never-shown rows needed, and where its liked rows' times start in the returned times
    (sorted by user, then time) and how many there are (``liked``)."""
    ordered = (
        shown.filter(pl.col(Sample.LABEL) == 1).select(Col.USER_ID, Col.TIMESTAMP).sort(Col.USER_ID, Col.TIMESTAMP)
    )
    per_user = (
        ordered.with_row_index("start")
        .group_by(Col.USER_ID)
        .agg(
            pl.col("start").first().cast(pl.Int64),
            pl.len().cast(pl.Int64).alias("liked"),
        )
        .with_columns((pl.col("liked") * per_positive).round().cast(pl.Int64).alias("need"))
    )
    return per_user.filter(pl.col("need") > 0).sort(Col.USER_ID), ordered[Col.TIMESTAMP]


def unseen_samples(
    shown: pl.DataFrame,
    was_seen: SeenTest,
    post_ids: npt.NDArray[np.int32],
    per_positive: float,
    seed: int,
) -> pl.DataFrame:
    """Negatives drawn from posts never shown to the user, ``per_positive`` per liked post of that user.

    Each gets the time of a random liked post of the same user in the window, so time features carry no label and
    the negative reads the same history as that positive (``batch.pipeline.row_history``).

    Args:
        shown: :func:`shown_samples` of the window.
        was_seen: Whether a (user, post) was shown before the window's end, window included.
        post_ids: The catalog.
        per_positive: Never-shown negatives per positive; 0 trains on shown posts alone.
        seed: Random seed of the draw.
    """
    draws, times = _draws(shown, per_positive)
    if draws.height == 0 or post_ids.size == 0:
        return pl.DataFrame(schema=SAMPLE_SCHEMA)
    rng = np.random.default_rng(seed)
    # Draw twice what is needed (plus a few), then drop seen posts and repeats: most of a catalog is unseen.
    counts = draws["need"].to_numpy() * 2 + 4
    users = np.repeat(draws[Col.USER_ID].to_numpy(), counts).astype(np.int32)
    posts = rng.choice(post_ids, size=int(counts.sum())).astype(np.int32)
    fresh = ~was_seen(users, posts)
    kept = (
        pl.DataFrame({Col.USER_ID: users[fresh], Col.POST_ID: posts[fresh]})
        .unique(maintain_order=True)
        .join(shown.select(Col.USER_ID, Col.POST_ID), on=[Col.USER_ID, Col.POST_ID], how="anti", maintain_order="left")
        .join(draws, on=Col.USER_ID, maintain_order="left")
        .filter(pl.int_range(pl.len()).over(Col.USER_ID) < pl.col("need"))
    )
    pick = (rng.random(kept.height) * kept["liked"].to_numpy()).astype(np.int64)
    return kept.select(
        pl.col(Col.USER_ID),
        pl.col(Col.POST_ID),
        times.gather(kept["start"].to_numpy() + pick).alias(Col.TIMESTAMP),
        pl.lit(0, pl.Int8).alias(Sample.LABEL),
        pl.lit(0, pl.Int8).alias(Sample.SHOWN),
    )


def window_samples(
    views: pl.DataFrame,
    was_seen: SeenTest,
    post_ids: npt.NDArray[np.int32],
    per_positive: float,
    seed: int,
    keep_skipped: bool = True,
) -> pl.DataFrame:
    """Shown rows (all of them, or with ``keep_skipped`` off only the liked ones) and never-shown negatives of one
    window, sorted by user and post."""
    shown = shown_samples(views)
    unseen = unseen_samples(shown, was_seen, post_ids, per_positive, seed)
    if not keep_skipped:
        shown = shown.filter(pl.col(Sample.LABEL) == 1)
    return pl.concat([shown, unseen]).sort(Col.USER_ID, Col.POST_ID, Sample.SHOWN)


def sample_per_mille(views: int, like_rate: float, params: TrainParams) -> int:
    """Thousandths of users to sample so the expected rows stay within ``max_train_rows``."""
    shown_rows = views if params.skipped_negatives else views * like_rate
    expected_rows = shown_rows + views * like_rate * params.unseen_per_positive
    if expected_rows <= params.max_train_rows:
        return SAMPLE_BASE
    return max(1, math.floor(SAMPLE_BASE * params.max_train_rows / expected_rows))


@dataclass(frozen=True, slots=True)
class Samples:
    """Labelled rows of the label window (training) and of the validation window, made alike (liked posts and
    never-shown ones), and the training rows' own histories (None when ``TrainParams.history_at_row`` is off)."""

    train: pl.DataFrame
    valid: pl.DataFrame
    train_histories: RowHistories | None = None

    def without_training(self) -> Samples:
        """The validation rows alone: what only training reads (2.4M rows at full scale) can then be freed."""
        return Samples(self.train.clear(), self.valid)


def labelled_rows(
    engine: Engine, base: Mapping[Cutoff, FeatureSet], windows: Windows, params: TrainParams, likes: pl.DataFrame
) -> Samples:
    """Step samples: the labelled rows of both windows, users sampled to keep training within its row budget, and
    the training rows' histories from ``likes`` (every like row before as_of) and the label window's views.

    ``base`` holds the base feature sets of every cutoff: what was shown before each window's end, the posts."""
    with step("samples") as done:
        views = count_window_views(engine, windows.label_start, windows.valid_start)
        per_mille = sample_per_mille(views, EXPECTED_LIKE_RATE, params)
        label_views = load_window_views(engine, windows.label_start, windows.valid_start, per_mille, params.seed)
        # Shown before the end of a window = shown before the cutoff of the next feature set.
        seen_by_valid, seen_by_end = base[Cutoff.VALID].was_shown, base[Cutoff.SCORE].was_shown
        post_ids = base[Cutoff.TRAIN].post_ids
        train = window_samples(
            label_views, seen_by_valid, post_ids, params.unseen_per_positive, params.seed, params.skipped_negatives
        )
        valid_views = load_window_views(engine, windows.valid_start, windows.as_of, per_mille, params.seed)
        valid = window_samples(
            valid_views, seen_by_end, post_ids, params.unseen_per_positive, params.seed, params.skipped_negatives
        )
        histories = None
        if params.history_at_row:
            in_label = pl.col(Col.TIMESTAMP).is_between(windows.label_start, windows.valid_start, closed="left")
            window_likes = likes.filter(in_label)
            histories = row_histories(
                base[Cutoff.TRAIN], train, window_likes, label_views, params.history_lag, params.seed
            )
        log.info(
            "samples: user_per_mille=%d train_rows=%d valid_rows=%d train_states=%s history_lag_up_to=%s",
            per_mille,
            train.height,
            valid.height,
            histories.states if histories is not None else "off",
            params.history_lag,
        )
        done.rows = train.height + valid.height
    return Samples(train, valid, histories)
