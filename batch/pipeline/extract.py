"""Extract: the three source tables from PostgreSQL into polars, through ``COPY ... TO STDOUT``.

COPY streams CSV that is parsed in chunks of a few tens of MB, so the text form of the feed (gigabytes at full
scale) never sits in memory at once; only the compact typed frame does. Aggregations that need not see every row
can run in PostgreSQL through :func:`copy_query`.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import polars as pl
import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import Engine

from batch.pipeline.rules import AGE_MAX, AGE_MIN
from common.columns import Action, Col, Table
from common.db import describe_database_error, driver_reason, lost_connection_message
from common.errors import SourceUnavailableError
from common.logs import rss_mb

log = logging.getLogger(__name__)

USER_SCHEMA: Mapping[str, pl.DataType] = {
    Col.USER_ID: pl.Int32(),
    Col.AGE: pl.Int16(),
    Col.CITY: pl.String(),
    Col.COUNTRY: pl.String(),
    Col.EXP_GROUP: pl.Int8(),
    Col.GENDER: pl.Int8(),
    Col.OS: pl.String(),
    Col.SOURCE: pl.String(),
}
POST_SCHEMA: Mapping[str, pl.DataType] = {Col.POST_ID: pl.Int32(), Col.TEXT: pl.String(), Col.TOPIC: pl.String()}
FEED_SCHEMA: Mapping[str, pl.DataType] = {
    Col.TIMESTAMP: pl.Datetime("us"),
    Col.USER_ID: pl.Int32(),
    Col.POST_ID: pl.Int32(),
    Col.ACTION: pl.Enum(list(Action.ALL)),
    Col.TARGET: pl.Int8(),
}
CHUNK_BYTES = 64 * 2**20
# A reduction applied to every parsed chunk and once more to their concatenation (e.g. ``DataFrame.unique``), so
# that a large result reduced on the client never sits in memory whole.
ChunkReducer = Callable[[pl.DataFrame], pl.DataFrame]


# Receives every parsed chunk of a streamed result, in order.
ChunkConsumer = Callable[[pl.DataFrame], None]


class _CsvChunkParser(io.RawIOBase):
    """A write-only stream for ``copy_expert`` that parses complete CSV lines into frames every few MB and hands
    each to ``consume``."""

    def __init__(self, schema: Mapping[str, pl.DataType], chunk_bytes: int, consume: ChunkConsumer) -> None:
        super().__init__()
        self._schema = dict(schema)
        self._chunk_bytes = chunk_bytes
        self._consume = consume
        self._pending: list[bytes] = []
        self._pending_size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # noqa: ANN401 - the buffer protocol type of io.RawIOBase
        chunk = bytes(data)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= self._chunk_bytes:
            self._parse_complete_lines()
        return len(chunk)

    def finish(self) -> None:
        """Parse what is left."""
        self._parse(b"".join(self._pending))
        self._pending, self._pending_size = [], 0

    def _parse_complete_lines(self) -> None:
        text = b"".join(self._pending)
        cut = text.rfind(b"\n") + 1
        self._parse(text[:cut])
        self._pending, self._pending_size = [text[cut:]], len(text) - cut

    def _parse(self, text: bytes) -> None:
        if text:
            self._consume(_read_csv(text, self._schema))


def _read_csv(text: bytes, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    # Enums and timestamps are parsed from strings first: the CSV reader's own parsing of them is stricter than
    # PostgreSQL's text output (fractional seconds are optional there).
    raw_schema = {
        name: (pl.String() if isinstance(dtype, pl.Enum | pl.Datetime) else dtype) for name, dtype in schema.items()
    }
    frame = pl.read_csv(text, has_header=False, new_columns=list(schema), schema=raw_schema)
    return frame.with_columns(_convert(name, dtype) for name, dtype in schema.items() if name in frame.columns)


def _convert(name: str, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).str.to_datetime(time_unit="us", format="%Y-%m-%d %H:%M:%S%.f", strict=True)
    return pl.col(name).cast(dtype)


def copy_query(
    engine: Engine,
    sql: str,
    schema: Mapping[str, pl.DataType],
    params: Mapping[str, Any] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    reduce: ChunkReducer | None = None,
) -> pl.DataFrame:
    """Run a SELECT through ``COPY (...) TO STDOUT`` and return its rows as a typed frame.

    Args:
        engine: Engine on the source database.
        sql: A SELECT whose columns are, in order, the keys of ``schema``; ``%(name)s`` placeholders allowed.
        schema: Column name -> polars dtype of the result.
        params: Values for the placeholders, quoted by the driver.
        chunk_bytes: How much CSV text to buffer before parsing it.
        reduce: Applied to each parsed chunk and to their concatenation; must be associative (unique, a
            group-by with min/max/sum), since the final call sees the chunks' reduced rows together.
    """
    frames: list[pl.DataFrame] = []

    def keep(frame: pl.DataFrame) -> None:
        frames.append(frame if reduce is None else reduce(frame))

    copy_chunks(engine, sql, schema, keep, params, chunk_bytes)
    if not frames:
        return pl.DataFrame(schema=dict(schema))
    whole = pl.concat(frames, rechunk=True)
    frames.clear()
    return whole if reduce is None else reduce(whole)


def copy_chunks(
    engine: Engine,
    sql: str,
    schema: Mapping[str, pl.DataType],
    consume: ChunkConsumer,
    params: Mapping[str, Any] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> None:
    """Run a SELECT through ``COPY (...) TO STDOUT`` and hand its rows to ``consume`` chunk by chunk, as typed
    frames of about ``chunk_bytes`` of CSV each, for results too large to hold as one frame.

    Args: as :func:`copy_query`, with ``consume`` called once per chunk, in order.
    """
    parser = _CsvChunkParser(schema, chunk_bytes, consume)
    raw = engine.raw_connection()
    connection: psycopg2.extensions.connection = raw.driver_connection
    try:
        with connection.cursor() as cursor:
            statement = cursor.mogrify(sql, params or {}).decode()
            cursor.copy_expert(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)", parser)
    except (psycopg2.DatabaseError, psycopg2.InterfaceError) as exc:
        # The server died or was restarted mid-COPY: one clear error for the step, not the driver's traceback.
        # libpq may report that as a bare DatabaseError ("error with status PGRES_COPY_OUT and no message from the
        # libpq"); the connection it leaves closed tells it from an error of the query itself.
        message = describe_database_error(exc)
        if message is None and not connection.closed:
            raise
        raise SourceUnavailableError(message or lost_connection_message(driver_reason(exc))) from None
    finally:
        raw.close()
    parser.finish()


def _timed_copy(
    engine: Engine, table: str, sql: str, schema: Mapping[str, pl.DataType], params: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    started = time.perf_counter()
    frame = copy_query(engine, sql, schema, params)
    seconds = time.perf_counter() - started
    log.info("extracted %s: rows=%d seconds=%.2f rss_mb=%.0f", table, frame.height, seconds, rss_mb())
    return frame


def load_users(engine: Engine) -> pl.DataFrame:
    """Every user with its demographics; an impossible age (see :mod:`batch.pipeline.rules`) is read as missing."""
    columns = ", ".join(
        f"CASE WHEN {Col.AGE} BETWEEN {AGE_MIN} AND {AGE_MAX} THEN {Col.AGE} END" if name == Col.AGE else name
        for name in USER_SCHEMA
    )
    return _timed_copy(engine, Table.USERS, f"SELECT {columns} FROM {Table.USERS} ORDER BY {Col.USER_ID}", USER_SCHEMA)


def load_posts(engine: Engine) -> pl.DataFrame:
    """Every post with its text and topic; a NULL text or topic is read as ``""`` (the rules' WARN handling)."""
    columns = ", ".join(f"coalesce({name}, '')" if name != Col.POST_ID else name for name in POST_SCHEMA)
    return _timed_copy(engine, Table.POSTS, f"SELECT {columns} FROM {Table.POSTS} ORDER BY {Col.POST_ID}", POST_SCHEMA)


def load_feed(
    engine: Engine, start: datetime | None = None, end: datetime | None = None, action: str | None = None
) -> pl.DataFrame:
    """Feed rows with ``start <= timestamp < end`` (either bound optional), optionally of one action only.

    ``target`` is kept as stored: NULL or 0 on like rows, both accepted.
    """
    conditions, params = _feed_filter(start, end, action)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    columns = ", ".join(f'"{name}"' for name in FEED_SCHEMA)
    return _timed_copy(engine, Table.FEED, f"SELECT {columns} FROM {Table.FEED}{where}", FEED_SCHEMA, params)


def _feed_filter(start: datetime | None, end: datetime | None, action: str | None) -> tuple[list[str], dict[str, Any]]:
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if start is not None:
        conditions.append(f'"{Col.TIMESTAMP}" >= %(start)s')
        params["start"] = start
    if end is not None:
        conditions.append(f'"{Col.TIMESTAMP}" < %(end)s')
        params["end"] = end
    if action is not None:
        conditions.append(f"{Col.ACTION} = %(action)s")
        params["action"] = action
    return conditions, params
