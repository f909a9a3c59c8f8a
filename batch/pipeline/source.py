"""Step validate and extract: the source checked, then users, posts and every like before as_of read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.pipeline.extract import load_feed, load_posts, load_users
from batch.pipeline.options import BuildOptions
from batch.pipeline.steps import step
from batch.pipeline.validate import validate_source
from batch.publish.release import new_version_id
from common.columns import Action, Col, Table
from common.errors import SourceUnavailableError


@dataclass(frozen=True, slots=True)
class Source:
    """What the build read from PostgreSQL.

    Attributes:
        as_of: Only feed rows before it are used.
        version: The id the new version will have.
        users: The user table.
        posts: The catalog.
        likes: Every like before as_of (timestamp, user_id, post_id): the liked sets, what scoring leaves out.
    """

    as_of: datetime
    version: str
    users: pl.DataFrame
    posts: pl.DataFrame
    likes: pl.DataFrame

    def likes_before(self, cutoff: datetime) -> pl.DataFrame:
        """(user_id, post_id) liked before ``cutoff``."""
        return self.likes.filter(pl.col(Col.TIMESTAMP) < cutoff).select(Col.USER_ID, Col.POST_ID)


def data_end(engine: Engine) -> datetime:
    """The default as_of: midnight after the feed's last row.

    Raises:
        SourceUnavailableError: The feed is empty.
    """
    with engine.connect() as conn:
        last = conn.execute(sa.text(f'SELECT max("{Col.TIMESTAMP}") FROM {Table.FEED}')).scalar()
    if last is None:
        raise SourceUnavailableError(f"{Table.FEED} is empty: load data or run `postrec seed` first")
    return datetime.combine(last.date(), datetime.min.time()) + timedelta(days=1)


def read_source(engine: Engine, options: BuildOptions) -> Source:
    """Steps validate and extract: check the source, then read users, posts and every like before as_of."""
    with step("validate"):
        validate_source(engine)
        as_of = options.as_of or data_end(engine)
    with step("extract") as done:
        users, posts = load_users(engine), load_posts(engine)
        likes = load_feed(engine, end=as_of, action=Action.LIKE).select(Col.TIMESTAMP, Col.USER_ID, Col.POST_ID)
        done.rows = users.height + posts.height + likes.height
    return Source(as_of, new_version_id(as_of), users, posts, likes)
