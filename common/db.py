"""PostgreSQL access: engines, the source schema's DDL and ``postrec db init``."""

from __future__ import annotations

import logging
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from common.columns import Col, Table
from common.errors import SourceUnavailableError

log = logging.getLogger(__name__)

SCHEMA_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {Table.USERS} (
        {Col.USER_ID} integer PRIMARY KEY, {Col.AGE} integer, {Col.CITY} text, {Col.COUNTRY} text,
        {Col.EXP_GROUP} integer, {Col.GENDER} integer, {Col.OS} text, {Col.SOURCE} text)""",
    f"""CREATE TABLE IF NOT EXISTS {Table.POSTS} (
        {Col.POST_ID} integer PRIMARY KEY, {Col.TEXT} text, {Col.TOPIC} text)""",
    f"""CREATE TABLE IF NOT EXISTS {Table.FEED} (
        {Col.TIMESTAMP} timestamp, {Col.USER_ID} integer, {Col.POST_ID} integer, {Col.ACTION} text,
        {Col.TARGET} integer)""",
)

# The batch scans the feed by time window and aggregates per user and per post; likes are read on their own for
# the liked sets and the like-sync watermark.
INDEX_DDL = (
    f"CREATE INDEX IF NOT EXISTS feed_data_timestamp_idx ON {Table.FEED} ({Col.TIMESTAMP})",
    f"CREATE INDEX IF NOT EXISTS feed_data_user_idx ON {Table.FEED} ({Col.USER_ID})",
    f"CREATE INDEX IF NOT EXISTS feed_data_like_ts_idx ON {Table.FEED} ({Col.TIMESTAMP}) WHERE {Col.ACTION} = 'like'",
)


CONNECT_TIMEOUT_S: Final = 10


def sqlalchemy_url(database_url: str) -> sa.URL:
    """Parse a ``postgresql://`` URL, pinning the psycopg2 driver (SQLAlchemy 2.1 would otherwise pick psycopg 3)."""
    url = make_url(database_url)
    return url.set(drivername="postgresql+psycopg2") if url.drivername == "postgresql" else url


def make_engine(database_url: str) -> Engine:
    """Create an engine; connections are checked before use so a restarted server is picked up.

    A host that drops packets instead of refusing them would otherwise hold a connection attempt for the kernel's
    TCP timeout (minutes): :data:`CONNECT_TIMEOUT_S` bounds it, unless the URL sets ``connect_timeout`` itself.
    """
    url = sqlalchemy_url(database_url)
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def check_connection(engine: Engine) -> None:
    """Fail fast with a clear error when PostgreSQL cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise SourceUnavailableError(f"PostgreSQL at {url} is unreachable: {exc.orig}".strip()) from None


def ensure_database(database_url: str) -> bool:
    """Create the URL's database when it does not exist yet. Returns True when it was created."""
    url = sqlalchemy_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}).first()
            if exists is None:
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
        return exists is None
    finally:
        admin.dispose()


def init_schema(engine: Engine) -> None:
    """Create the source tables and the indexes the batch needs; safe to run again."""
    check_connection(engine)
    with engine.begin() as conn:
        for statement in (*SCHEMA_DDL, *INDEX_DDL):
            conn.execute(sa.text(statement))
    log.info("schema ready: tables=%s", ",".join((Table.USERS, Table.POSTS, Table.FEED)))


def drop_feed_indexes(engine: Engine) -> None:
    """Drop the feed's indexes before a bulk load; :func:`init_schema` recreates them afterwards."""
    with engine.begin() as conn:
        for name in ("feed_data_timestamp_idx", "feed_data_user_idx", "feed_data_like_ts_idx"):
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
