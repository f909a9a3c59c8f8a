"""PostgreSQL access: engines, the source schema's DDL and ``postrec db init``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from common.columns import Col, Table
from common.errors import SourceUnavailableError
from common.settings import normalise_database_url
from common.urls import mask_url

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


def naive_utc_now() -> datetime:
    """Now as a naive UTC time: the form of the feed's ``timestamp without time zone`` values it is compared with."""
    return datetime.now(UTC).replace(tzinfo=None)


def sqlalchemy_url(database_url: str) -> sa.URL:
    """Parse a ``postgresql://`` URL (``postgres://`` too), pinning the psycopg2 driver (SQLAlchemy 2.1 would
    otherwise pick psycopg 3)."""
    url = make_url(normalise_database_url(database_url))
    return url.set(drivername="postgresql+psycopg2") if url.drivername == "postgresql" else url


def make_engine(database_url: str) -> Engine:
    """Create an engine; connections are checked before use so a restarted server is picked up.

    A host that drops packets instead of refusing them would otherwise hold a connection attempt for the kernel's
    TCP timeout (minutes): :data:`CONNECT_TIMEOUT_S` bounds it, unless the URL sets ``connect_timeout`` itself.
    """
    url = sqlalchemy_url(database_url)
    return sa.create_engine(url, pool_pre_ping=True, connect_args=_timeout(url))


def _timeout(url: sa.URL) -> dict[str, int]:
    return {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}


def check_connection(engine: Engine) -> None:
    """Fail fast with a clear error when PostgreSQL cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        raise unreachable(engine.url, exc) from None


def unreachable(url: sa.URL, exc: sa.exc.DBAPIError) -> SourceUnavailableError:
    """The error for a failed connection, naming the URL without its password."""
    shown = mask_url(url.render_as_string(hide_password=False))
    return SourceUnavailableError(f"PostgreSQL at {shown} is unreachable: {exc.orig}".strip())


def ensure_database(database_url: str) -> bool:
    """Create the URL's database when it does not exist yet. Returns True when it was created.

    Raises:
        SourceUnavailableError: PostgreSQL cannot be reached.
    """
    url = sqlalchemy_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args=_timeout(url))
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}).first()
            if exists is None:
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
        return exists is None
    except sa.exc.OperationalError as exc:
        raise unreachable(url, exc) from None
    finally:
        admin.dispose()


def describe_database_error(exc: BaseException) -> str | None:
    """One line for a PostgreSQL failure that reached the top of a command (a server that died or restarted
    mid-query or mid-COPY), or None when ``exc`` is not one."""
    reason = database_failure(exc)
    return None if reason is None else lost_connection_message(reason)


def driver_reason(exc: BaseException) -> str:
    """The first line of a driver error's text, or its type's name when it has none."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def lost_connection_message(reason: str) -> str:
    """The one line for a connection that failed or was lost, with the driver's ``reason``."""
    return (
        f"PostgreSQL connection failed or was lost ({reason}): the command stopped, and PostgreSQL rolled back "
        "what it had not committed; check that PostgreSQL is running, then run the command again"
    )


def database_failure(exc: BaseException) -> str | None:
    """The driver's first line for a lost or failed connection, or None when ``exc`` is not one.

    A failure while cleaning up (the rollback of a dead connection: "connection already closed") hides the one that
    happened first, so the earliest connection error in the chain is the one named.
    """
    reasons = []
    seen: BaseException | None = exc
    while seen is not None:
        orig = seen.orig if isinstance(seen, sa.exc.DBAPIError) else seen
        if isinstance(orig, psycopg2.OperationalError | psycopg2.InterfaceError):
            reasons.append(driver_reason(orig))
        seen = seen.__cause__ or seen.__context__
    return reasons[-1] if reasons else None


def init_schema(engine: Engine) -> None:
    """Create the source tables and the indexes the batch needs; safe to run again."""
    check_connection(engine)
    with engine.begin() as conn:
        for statement in (*SCHEMA_DDL, *INDEX_DDL):
            conn.execute(sa.text(statement))
    log.info("schema ready: tables=%s", ",".join((Table.USERS, Table.POSTS, Table.FEED)))


FEED_INDEXES: Final = ("feed_data_timestamp_idx", "feed_data_user_idx", "feed_data_like_ts_idx")


def drop_feed_indexes(engine: Engine) -> None:
    """Drop the feed's indexes before a bulk load; :func:`init_schema` recreates them afterwards."""
    with engine.begin() as conn:
        for name in FEED_INDEXES:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
