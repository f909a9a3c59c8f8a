"""``postrec seed``: generate a synthetic world and load it into PostgreSQL, replacing what was there.

The three source tables and the truth tables are emptied and filled in one transaction, streamed with
``COPY FROM STDIN`` one chunk of users at a time: a failed seed leaves the previous data, and memory stays
bounded at full scale. The feed's indexes are dropped for the load and rebuilt afterwards.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar, cast

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.world.designs import DEFAULT_WORLD
from batch.world.generator import World, generate_feed, generate_world
from batch.world.store import CopyCursor, save_truth
from common.columns import Table
from common.db import INDEX_DDL, drop_feed_indexes, init_schema
from common.logs import progress, rss_mb

log = logging.getLogger(__name__)
T = TypeVar("T")

_INDEX_BUILD_MEMORY = "512MB"


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What a seed loaded and how long it took."""

    users: int
    posts: int
    feed_rows: int
    seconds: float


def seed_database(engine: Engine, scale: str, seed: int, world_name: str = DEFAULT_WORLD) -> SeedReport:
    """Generate the world ``world_name`` at ``scale`` with ``seed`` and make it the database's contents.

    Args:
        engine: Engine on the target database (its schema is created when missing).
        scale: ``tiny``, ``small``, ``medium`` or ``full``.
        seed: Random seed; the same scale, seed and world always give the same data.
        world_name: One of :data:`batch.world.designs.WORLDS` (``text``, ``collab``, ``popular``, ``bursty``).
    """
    started = time.perf_counter()
    world = generate_world(scale, seed, world_name)
    init_schema(engine)
    drop_feed_indexes(engine)
    try:
        feed_rows = _load_world(engine, world)
        _rebuild_feed_indexes(engine)
    finally:
        init_schema(engine)  # recreates the indexes too when the load failed
    report = SeedReport(len(world.users), len(world.posts), feed_rows, time.perf_counter() - started)
    log.info(
        "seeded: world=%s scale=%s seed=%d users=%d posts=%d feed_rows=%d seconds=%.1f rss_mb=%.0f",
        world_name,
        scale,
        seed,
        report.users,
        report.posts,
        report.feed_rows,
        report.seconds,
        rss_mb(),
    )
    return report


def _rebuild_feed_indexes(engine: Engine) -> None:
    """Build the feed's indexes with more sort memory than the server default: at full scale this is minutes."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(f"SET LOCAL maintenance_work_mem = '{_INDEX_BUILD_MEMORY}'"))
        for statement in INDEX_DDL:
            conn.execute(sa.text(statement))
    log.info("feed indexes built: seconds=%.1f", time.perf_counter() - started)


def _load_world(engine: Engine, world: World) -> int:
    """Replace every table's contents in one transaction; returns the number of feed rows."""
    connection = engine.raw_connection()
    try:
        cursor = cast(CopyCursor, connection.cursor())
        cursor.execute(f"TRUNCATE {Table.USERS}, {Table.POSTS}, {Table.FEED}")
        copy_frame(cursor, Table.USERS, world.users.to_frame())
        copy_frame(cursor, Table.POSTS, world.posts.to_frame())
        rows = _load_feed(cursor, world)
        save_truth(cursor, world.truth)
        connection.commit()
        log.info("loaded and committed: feed_rows=%d rss_mb=%.0f", rows, rss_mb())
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    return rows


def _load_feed(cursor: CopyCursor, world: World) -> int:
    rows = 0
    chunks = _prefetched((frame.height, frame.columns, csv_bytes(frame)) for frame in generate_feed(world))
    for height, columns, buffer in progress(chunks, world.chunk_count, "feed chunks", log):
        copy_csv(cursor, Table.FEED, columns, buffer)
        rows += height
    return rows


def _prefetched(items: Iterator[T]) -> Iterator[T]:
    """Yield ``items`` while a background thread already computes the next one.

    Generating a chunk (numpy, polars: they release the GIL) then overlaps with PostgreSQL parsing the previous
    one, so both of a small machine's cores work.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-generate") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def csv_bytes(frame: pl.DataFrame) -> io.BytesIO:
    """The frame as headerless CSV, timestamps to the second, ready for ``COPY ... (FORMAT csv)``."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S")
    buffer.seek(0)
    return buffer


def copy_csv(cursor: CopyCursor, table: str, columns: list[str], buffer: io.BytesIO) -> None:
    """Append CSV rows to a table with ``COPY FROM STDIN``, columns by name."""
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)


def copy_frame(cursor: CopyCursor, table: str, frame: pl.DataFrame) -> None:
    """Append a frame to a table with ``COPY FROM STDIN`` (CSV, columns by name)."""
    copy_csv(cursor, table, frame.columns, csv_bytes(frame))
