"""One user's rows of now, read from PostgreSQL, and that user's features computed from them as the batch does.

``refresh_user`` rescores a user between refreshes. The user's side of the features (activity counts, the user x
topic counts and rates, the posts already shown, the posts liked) comes from every feed row of the user up to now:
one small query through the feed's ``user_id`` index, counted by :func:`batch.pipeline.feed_counts.count_feed` and
turned into features by the batch's own :func:`batch.pipeline.features.user_side`, smoothed with the version's global
like rate.
The post side is global and stays the live version's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

import polars as pl
import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.pipeline.extract import FEED_SCHEMA, USER_SCHEMA, copy_query
from batch.pipeline.features import Encoders, FeatureSet, user_side
from batch.pipeline.feed_counts import FeedCounts, count_feed
from common.columns import Action, Col, Table
from common.errors import SourceUnavailableError, UnknownUserError
from common.urls import mask_url

USER_FEED_SCHEMA: Final = {
    Col.TIMESTAMP: FEED_SCHEMA[Col.TIMESTAMP],
    Col.USER_ID: FEED_SCHEMA[Col.USER_ID],
    Col.POST_ID: FEED_SCHEMA[Col.POST_ID],
    Col.ACTION: FEED_SCHEMA[Col.ACTION],
    Col.TOPIC: pl.String(),
}
MICROSECOND: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class UserRows:
    """One user's source rows as of now.

    Attributes:
        user: Its ``user_data`` row (the columns of :data:`batch.pipeline.extract.USER_SCHEMA`).
        feed: Every feed row of the user (timestamp, user_id, post_id, action) with the topic of its post, null for
            a post missing from the catalog (counted in the user's totals but in no topic, as the batch does).
    """

    user: pl.DataFrame
    feed: pl.DataFrame


def load_user_rows(engine: Engine, user_id: int) -> UserRows:
    """The user's ``user_data`` row and all its feed rows, now.

    Raises:
        SourceUnavailableError: PostgreSQL cannot be reached.
        UnknownUserError: ``user_data`` has no such user.
    """
    try:
        rows = UserRows(user=_load_user(engine, user_id), feed=_load_user_feed(engine, user_id))
    except (sa.exc.OperationalError, psycopg2.OperationalError) as exc:
        url = mask_url(engine.url.render_as_string(hide_password=False))
        raise SourceUnavailableError(
            f"PostgreSQL at {url} is unreachable ({exc}): user {user_id} was not rescored and its list is unchanged;"
            " start PostgreSQL or check POSTREC_DATABASE_URL, then run `postrec refresh --user` again"
        ) from None
    if rows.user.is_empty():
        raise UnknownUserError(f"user {user_id} is not in {Table.USERS}: check the id")
    return rows


def _load_user(engine: Engine, user_id: int) -> pl.DataFrame:
    columns = ", ".join(USER_SCHEMA)
    sql = f"SELECT {columns} FROM {Table.USERS} WHERE {Col.USER_ID} = %(user)s"
    return copy_query(engine, sql, USER_SCHEMA, {"user": user_id})


def _load_user_feed(engine: Engine, user_id: int) -> pl.DataFrame:
    # The user_id filter is what lets PostgreSQL read only this user's rows (feed_data_user_idx).
    sql = (
        f'SELECT f."{Col.TIMESTAMP}", f.{Col.USER_ID}, f.{Col.POST_ID}, f.{Col.ACTION}, p.{Col.TOPIC}'
        f" FROM {Table.FEED} f LEFT JOIN {Table.POSTS} p ON p.{Col.POST_ID} = f.{Col.POST_ID}"
        f" WHERE f.{Col.USER_ID} = %(user)s"
    )
    return copy_query(engine, sql, USER_FEED_SCHEMA, {"user": user_id})


def count_user_rows(rows: UserRows, fallback_cutoff: datetime) -> FeedCounts:
    """The counts of every feed row of the user, by the batch's :func:`batch.pipeline.feed_counts.count_feed`.

    Args:
        rows: The user's rows.
        fallback_cutoff: The cutoff recorded when the user has no feed row at all.
    """
    feed = rows.feed
    last = feed[Col.TIMESTAMP].max()
    cutoff = last + MICROSECOND if isinstance(last, datetime) else fallback_cutoff
    topics = feed.select(Col.POST_ID, Col.TOPIC).drop_nulls().unique()
    return count_feed(feed, topics, cutoff)


def _actions(feed: pl.DataFrame, action: str) -> pl.DataFrame:
    """(timestamp, user_id, post_id) of the feed's rows of ``action``."""
    return feed.filter(pl.col(Col.ACTION).cast(pl.String) == action).select(Col.TIMESTAMP, Col.USER_ID, Col.POST_ID)


def user_features_now(
    features: FeatureSet, encoders: Encoders, rows: UserRows, liked_post_ids: Sequence[int]
) -> FeatureSet:
    """One user's feature set of now: its user side recomputed from ``rows``, the post side of ``features``.

    The cutoff (so the time features of scoring) and the post features stay those of ``features``, the live
    version's; the user's counts, rates, user x topic array and the posts already shown to it cover every row of
    now. Left out of scoring: the posts it liked in ``rows`` and ``liked_post_ids`` (its liked set in Redis).

    Args:
        features: The live version's feature set (any shard: only its post side and like prior are used).
        encoders: The version's categorical codes.
        rows: The user's rows of now, from :func:`load_user_rows`.
        liked_post_ids: Posts also known as liked (the user's liked set); unknown ids are ignored.
    """
    counts = count_user_rows(rows, features.cutoff)
    user_id = int(rows.user[Col.USER_ID][0])
    feed_likes = _actions(rows.feed, Action.LIKE)
    # The liked set's likes come without their time: the feed's likes alone give the user's latest like time.
    known_likes = pl.DataFrame(
        {Col.TIMESTAMP: [None] * len(liked_post_ids), Col.USER_ID: [user_id] * len(liked_post_ids)},
        schema={Col.TIMESTAMP: feed_likes.schema[Col.TIMESTAMP], Col.USER_ID: pl.Int32()},
    ).with_columns(pl.Series(Col.POST_ID, list(liked_post_ids), dtype=pl.Int32))
    liked = pl.concat([feed_likes.cast({Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32}), known_likes])
    viewed = _actions(rows.feed, Action.VIEW)
    side = user_side(rows.user, counts, encoders, features.like_prior, features.post_ids, liked, viewed)
    return replace(features, **side)
