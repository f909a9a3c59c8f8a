"""Labelled (user, post, time) rows for training and validation, from one time window of the feed.

Scoring ranks every post for every user, most of which the user was never shown, so the training rows mix the
posts shown in the window (liked or not) with posts never shown to the user before the window's end, labelled 0.
How many never-shown posts join per liked one is the ``unseen_per_positive`` parameter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
from sqlalchemy.engine import Engine

from batch.extract import copy_query
from common.columns import Action, Col, Table

# Users are sampled by a hash of their id, identically in PostgreSQL and here, in thousandths.
SAMPLE_BASE: Final = 1000
HASH_MULTIPLIER: Final = 2654435761


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
PAIR_SCHEMA: Final = {Col.USER_ID: pl.Int32(), Col.POST_ID: pl.Int32()}


def user_sample_expr(per_mille: int, seed: int) -> pl.Expr:
    """Polars twin of the SQL user sample: keeps about ``per_mille`` thousandths of users, chosen by ``seed``."""
    hashed = (pl.col(Col.USER_ID).cast(pl.Int64) * HASH_MULTIPLIER + seed) % SAMPLE_BASE
    return hashed < per_mille


def _user_sample_sql(alias: str) -> str:
    return f"mod({alias}.{Col.USER_ID}::bigint * {HASH_MULTIPLIER} + %(seed)s, {SAMPLE_BASE}) < %(per_mille)s"


def load_window_views(engine: Engine, start: datetime, end: datetime, per_mille: int, seed: int) -> pl.DataFrame:
    """View rows (timestamp, user_id, post_id, target) with ``start <= timestamp < end`` of sampled users."""
    sql = (
        f'SELECT f."{Col.TIMESTAMP}", f.{Col.USER_ID}, f.{Col.POST_ID}, f.{Col.TARGET} FROM {Table.FEED} f'
        f' WHERE f."{Col.TIMESTAMP}" >= %(start)s AND f."{Col.TIMESTAMP}" < %(end)s'
        f" AND f.{Col.ACTION} = '{Action.VIEW}' AND {_user_sample_sql('f')}"
    )
    params = {"start": start, "end": end, "per_mille": per_mille, "seed": seed}
    return copy_query(engine, sql, VIEW_SCHEMA, params)


def _distinct_pairs(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.unique()


def load_seen_pairs(engine: Engine, end: datetime, per_mille: int, seed: int) -> pl.DataFrame:
    """Distinct (user_id, post_id) shown to sampled users before ``end``.

    The rows are made distinct here, chunk by chunk, not by a ``SELECT DISTINCT``: PostgreSQL cannot estimate the
    groups of the sampling filter, and with a default ``work_mem`` its under-sized hash aggregate ran for tens of
    minutes at medium scale, where polars takes a second.
    """
    sql = (
        f"SELECT f.{Col.USER_ID}, f.{Col.POST_ID} FROM {Table.FEED} f"
        f' WHERE f."{Col.TIMESTAMP}" < %(end)s AND {_user_sample_sql("f")}'
    )
    params = {"end": end, "per_mille": per_mille, "seed": seed}
    return copy_query(engine, sql, PAIR_SCHEMA, params, reduce=_distinct_pairs)


FIRST_VIEW_SCHEMA: Final = {Col.USER_ID: pl.Int32(), Col.POST_ID: pl.Int32(), Col.TIMESTAMP: pl.Datetime("us")}


def load_first_views(engine: Engine, end: datetime) -> pl.DataFrame:
    """(user_id, post_id, time of the first view) of every pair shown before ``end``, all users.

    One pass serves every cutoff up to ``end``: the pairs shown before a cutoff are those first shown before it.
    """
    sql = (
        f'SELECT f.{Col.USER_ID}, f.{Col.POST_ID}, min(f."{Col.TIMESTAMP}") FROM {Table.FEED} f'
        f""" WHERE f."{Col.TIMESTAMP}" < %(end)s AND f.{Col.ACTION} = '{Action.VIEW}'"""
        f" GROUP BY f.{Col.USER_ID}, f.{Col.POST_ID}"
    )
    return copy_query(engine, sql, FIRST_VIEW_SCHEMA, {"end": end})


def shown_before(first_views: pl.DataFrame, cutoff: datetime) -> pl.DataFrame:
    """(user_id, post_id) first shown strictly before the cutoff."""
    return first_views.filter(pl.col(Col.TIMESTAMP) < cutoff).select(Col.USER_ID, Col.POST_ID)


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


def _draws(shown: pl.DataFrame, per_positive: float) -> pl.DataFrame:
    per_user = shown.group_by(Col.USER_ID).agg(
        (pl.col(Sample.LABEL).cast(pl.Float64).sum() * per_positive).round().cast(pl.Int64).alias("need"),
        pl.col(Col.TIMESTAMP).sort().alias("times"),
    )
    return per_user.filter(pl.col("need") > 0).sort(Col.USER_ID)


def unseen_samples(
    shown: pl.DataFrame,
    seen: pl.DataFrame,
    post_ids: npt.NDArray[np.int32],
    per_positive: float,
    seed: int,
) -> pl.DataFrame:
    """Negatives drawn from posts never shown to the user, ``per_positive`` per liked post of that user.

    Each gets the time of a random view of the same user in the window, so time features carry no label.

    Args:
        shown: :func:`shown_samples` of the window.
        seen: (user_id, post_id) shown to the user before the window's end, window included.
        post_ids: The catalog.
        per_positive: Never-shown negatives per positive; 0 trains on shown posts alone.
        seed: Random seed of the draw.
    """
    draws = _draws(shown, per_positive)
    if draws.height == 0 or post_ids.size == 0:
        return pl.DataFrame(schema=SAMPLE_SCHEMA)
    rng = np.random.default_rng(seed)
    # Draw twice what is needed (plus a few), then drop seen posts and repeats: most of a catalog is unseen.
    counts = draws["need"].to_numpy() * 2 + 4
    candidates = pl.DataFrame(
        {
            Col.USER_ID: np.repeat(draws[Col.USER_ID].to_numpy(), counts),
            Col.POST_ID: rng.choice(post_ids, size=int(counts.sum())).astype(np.int32),
        }
    )
    kept = (
        candidates.unique(maintain_order=True)
        .join(seen.select(Col.USER_ID, Col.POST_ID), on=[Col.USER_ID, Col.POST_ID], how="anti")
        .join(shown.select(Col.USER_ID, Col.POST_ID), on=[Col.USER_ID, Col.POST_ID], how="anti")
        .join(draws, on=Col.USER_ID)
        .filter(pl.int_range(pl.len()).over(Col.USER_ID) < pl.col("need"))
    )
    kept = kept.with_columns(pl.Series("pick", rng.random(kept.height)))
    time_index = (pl.col("pick") * pl.col("times").list.len()).floor().cast(pl.Int64)
    return kept.with_columns(pl.col("times").list.get(time_index).alias(Col.TIMESTAMP)).select(
        pl.col(Col.USER_ID),
        pl.col(Col.POST_ID),
        pl.col(Col.TIMESTAMP),
        pl.lit(0, pl.Int8).alias(Sample.LABEL),
        pl.lit(0, pl.Int8).alias(Sample.SHOWN),
    )


def window_samples(
    views: pl.DataFrame,
    seen: pl.DataFrame,
    post_ids: npt.NDArray[np.int32],
    per_positive: float,
    seed: int,
) -> pl.DataFrame:
    """Shown rows and never-shown negatives of one window, sorted by user and post."""
    shown = shown_samples(views)
    unseen = unseen_samples(shown, seen, post_ids, per_positive, seed)
    return pl.concat([shown, unseen]).sort(Col.USER_ID, Col.POST_ID, Sample.SHOWN)
