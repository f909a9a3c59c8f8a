"""Aggregates of the feed before a cutoff: views and likes per user, per post and per user x topic.

Features are built from these counts only, so whatever happened at or after the cutoff cannot leak into them.
Two implementations give the same frames: :func:`count_feed` in polars over a feed frame (tests, small data) and
:func:`load_feed_counts` in PostgreSQL, which scans the feed once for several cutoffs and returns only the
aggregates, so the full feed (76M rows) never has to sit in the batch's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import polars as pl
from sqlalchemy.engine import Engine

from batch.pipeline.extract import copy_query
from common.columns import Action, Col, Table

RECENT_DAYS: Final = 7


class Agg:
    """Column names of the aggregate frames."""

    VIEWS: Final = "views"
    LIKES: Final = "likes"
    RECENT_VIEWS: Final = "recent_views"
    RECENT_LIKES: Final = "recent_likes"


@dataclass(frozen=True, slots=True)
class FeedCounts:
    """Views and likes strictly before ``cutoff``; entities without any row are absent.

    Attributes:
        cutoff: Rows at or after this time were not counted.
        users: user_id, views, likes.
        posts: post_id, views, likes, recent_views, recent_likes (the last :data:`RECENT_DAYS` days before cutoff).
        user_topics: user_id, topic, views, likes.
    """

    cutoff: datetime
    users: pl.DataFrame
    posts: pl.DataFrame
    user_topics: pl.DataFrame


COUNT: Final = pl.Int32()
USER_COUNT_SCHEMA: Final = {Col.USER_ID: pl.Int32(), Agg.VIEWS: COUNT, Agg.LIKES: COUNT}
POST_COUNT_SCHEMA: Final = {
    Col.POST_ID: pl.Int32(),
    Agg.VIEWS: COUNT,
    Agg.LIKES: COUNT,
    Agg.RECENT_VIEWS: COUNT,
    Agg.RECENT_LIKES: COUNT,
}
USER_TOPIC_COUNT_SCHEMA: Final = {Col.USER_ID: pl.Int32(), Col.TOPIC: pl.String(), Agg.VIEWS: COUNT, Agg.LIKES: COUNT}


def _is(action: str) -> pl.Expr:
    return (pl.col(Col.ACTION).cast(pl.String) == action).cast(COUNT)


def count_feed(feed: pl.DataFrame, posts: pl.DataFrame, cutoff: datetime) -> FeedCounts:
    """Count views and likes in ``feed`` strictly before ``cutoff``.

    Args:
        feed: Feed rows (timestamp, user_id, post_id, action).
        posts: The catalog (post_id, topic), for the per-topic counts.
        cutoff: First moment not counted.
    """
    history = feed.lazy().filter(pl.col(Col.TIMESTAMP) < cutoff)
    recent = pl.col(Col.TIMESTAMP) >= cutoff - timedelta(days=RECENT_DAYS)
    flags = history.select(
        Col.USER_ID, Col.POST_ID, recent.alias("recent"), _is(Action.VIEW).alias("v"), _is(Action.LIKE).alias("l")
    )
    sums = (pl.col("v").sum().cast(COUNT).alias(Agg.VIEWS), pl.col("l").sum().cast(COUNT).alias(Agg.LIKES))
    recent_sums = (
        (pl.col("v") * pl.col("recent")).sum().cast(COUNT).alias(Agg.RECENT_VIEWS),
        (pl.col("l") * pl.col("recent")).sum().cast(COUNT).alias(Agg.RECENT_LIKES),
    )
    topics = posts.lazy().select(Col.POST_ID, Col.TOPIC)
    return FeedCounts(
        cutoff=cutoff,
        users=flags.group_by(Col.USER_ID).agg(*sums).sort(Col.USER_ID).collect(),
        posts=flags.group_by(Col.POST_ID).agg(*sums, *recent_sums).sort(Col.POST_ID).collect(),
        user_topics=flags.join(topics, on=Col.POST_ID)
        .group_by(Col.USER_ID, Col.TOPIC)
        .agg(*sums)
        .sort(Col.USER_ID, Col.TOPIC)
        .collect(),
    )


def _filter_sql(action: str, index: int, recent: bool = False) -> str:
    since = f' AND f."{Col.TIMESTAMP}" >= %(recent_{index})s' if recent else ""
    return f"count(*) FILTER (WHERE f.{Col.ACTION} = '{action}' AND f.\"{Col.TIMESTAMP}\" < %(cutoff_{index})s{since})"


def _count_columns(cutoffs: Sequence[datetime], recent: bool) -> str:
    columns = []
    for index in range(len(cutoffs)):
        columns += [_filter_sql(Action.VIEW, index), _filter_sql(Action.LIKE, index)]
        if recent:
            columns += [_filter_sql(Action.VIEW, index, recent=True), _filter_sql(Action.LIKE, index, recent=True)]
    return ", ".join(columns)


def _grouped_counts(engine: Engine, keys: Sequence[str], cutoffs: Sequence[datetime], recent: bool) -> pl.DataFrame:
    width = 4 if recent else 2
    key_sql = ", ".join(f"{'p' if key == Col.TOPIC else 'f'}.{key}" for key in keys)
    join = f" JOIN {Table.POSTS} p ON p.{Col.POST_ID} = f.{Col.POST_ID}" if Col.TOPIC in keys else ""
    sql = (
        f"SELECT {key_sql}, {_count_columns(cutoffs, recent)} FROM {Table.FEED} f{join}"
        f' WHERE f."{Col.TIMESTAMP}" < %(last)s GROUP BY {key_sql}'
    )
    schema = {key: (pl.String() if key == Col.TOPIC else pl.Int32()) for key in keys}
    schema |= {f"c{index}_{slot}": COUNT for index in range(len(cutoffs)) for slot in range(width)}
    params: dict[str, object] = {"last": max(cutoffs)}
    for index, cutoff in enumerate(cutoffs):
        params[f"cutoff_{index}"] = cutoff
        params[f"recent_{index}"] = cutoff - timedelta(days=RECENT_DAYS)
    return copy_query(engine, sql, schema, params)


def _one_cutoff(wide: pl.DataFrame, keys: Sequence[str], index: int, names: Sequence[str]) -> pl.DataFrame:
    frame = wide.select(*keys, *(pl.col(f"c{index}_{slot}").alias(name) for slot, name in enumerate(names)))
    return frame.filter(pl.col(Agg.VIEWS) + pl.col(Agg.LIKES) > 0).sort(*keys)


def load_feed_counts(engine: Engine, cutoffs: Sequence[datetime]) -> list[FeedCounts]:
    """The same counts as :func:`count_feed`, aggregated in PostgreSQL for several cutoffs in one scan each.

    Args:
        engine: Engine on the source database.
        cutoffs: The cutoffs to count before; one :class:`FeedCounts` each, in the same order.
    """
    users = _grouped_counts(engine, [Col.USER_ID], cutoffs, recent=False)
    posts = _grouped_counts(engine, [Col.POST_ID], cutoffs, recent=True)
    user_topics = _grouped_counts(engine, [Col.USER_ID, Col.TOPIC], cutoffs, recent=False)
    pair = (Agg.VIEWS, Agg.LIKES)
    return [
        FeedCounts(
            cutoff=cutoff,
            users=_one_cutoff(users, [Col.USER_ID], index, pair),
            posts=_one_cutoff(posts, [Col.POST_ID], index, (*pair, Agg.RECENT_VIEWS, Agg.RECENT_LIKES)),
            user_topics=_one_cutoff(user_topics, [Col.USER_ID, Col.TOPIC], index, pair),
        )
        for index, cutoff in enumerate(cutoffs)
    ]
