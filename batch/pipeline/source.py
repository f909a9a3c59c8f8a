"""Step validate and extract: the source checked, then users, posts and every like before as_of read."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.pipeline.extract import load_feed, load_posts, load_users
from batch.pipeline.options import BuildOptions
from batch.pipeline.steps import step
from batch.pipeline.validate import check_schema, validate_source
from batch.publish.release import new_version_id
from common.columns import Action, Col, Table
from common.db import check_connection, naive_utc_now
from common.errors import SourceUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Source:
    """What the build read from PostgreSQL.

    Attributes:
        as_of: Only feed rows before it are used.
        version: The id the new version will have.
        users: The user table.
        posts: The catalog.
        likes: Every like before as_of (timestamp, user_id, post_id): the liked sets, what scoring leaves out.
        ignored_rows: Feed rows dated at or after as_of, which the build leaves out.
    """

    as_of: datetime
    version: str
    users: pl.DataFrame
    posts: pl.DataFrame
    likes: pl.DataFrame
    ignored_rows: int = 0

    def likes_before(self, cutoff: datetime) -> pl.DataFrame:
        """(timestamp, user_id, post_id) of the likes before ``cutoff``."""
        return self.likes.filter(pl.col(Col.TIMESTAMP) < cutoff).select(Col.TIMESTAMP, Col.USER_ID, Col.POST_ID)


def data_end(engine: Engine, now: datetime | None = None) -> datetime:
    """The default as_of: midnight after the feed's last row that is not in the future, or now if that is earlier.

    A row dated after now (a clock error, a like dated 2099) never moves the cutoff: it is ignored and counted by
    validation instead of leaving the label window empty.

    Args:
        engine: Engine on the source database.
        now: The present as a naive UTC time; None = the clock.

    Raises:
        SourceUnavailableError: The feed holds no row dated before now.
    """
    now = now or naive_utc_now()
    with engine.connect() as conn:
        sql = f'SELECT max("{Col.TIMESTAMP}") FROM {Table.FEED} WHERE "{Col.TIMESTAMP}" <= :now'
        last = conn.execute(sa.text(sql), {"now": now}).scalar()
    if last is None:
        raise SourceUnavailableError(f"{Table.FEED} has no row dated before now: load data or run `postrec seed` first")
    return min(datetime.combine(last.date(), datetime.min.time()) + timedelta(days=1), now)


def validated_as_of(engine: Engine, options: BuildOptions) -> tuple[datetime, int]:
    """Step validate: the schema, then as_of, then every rule; stops naming every problem when a rule refuses.

    Returns:
        as_of, and the feed rows at or after it, which the build ignores (WARN rows are logged one rule per line).
    """
    check_connection(engine)
    with engine.connect() as conn:
        check_schema(conn)
    as_of = options.as_of or data_end(engine)
    report = validate_source(engine, as_of)
    ignored = report.count(Table.FEED, "dated at or after")
    log.info("feed rows at or after as_of %s: %d ignored", as_of.isoformat(sep=" "), ignored)
    return as_of, ignored


def read_source(engine: Engine, options: BuildOptions) -> Source:
    """Steps validate and extract: check the source, then read users, posts and every like before as_of."""
    with step("validate") as checked:
        as_of, ignored = validated_as_of(engine, options)
        checked.rows = ignored
    with step("extract") as done:
        users, posts = load_users(engine), load_posts(engine)
        likes = load_feed(engine, end=as_of, action=Action.LIKE).select(Col.TIMESTAMP, Col.USER_ID, Col.POST_ID)
        done.rows = users.height + posts.height + likes.height
    return Source(as_of, new_version_id(as_of), users, posts, likes, ignored)
