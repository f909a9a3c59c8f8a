"""Likes sync: copy like rows newer than a watermark from PostgreSQL into the liked sets in Redis.

The watermark (``KeyLayout.likes_watermark``) is the timestamp of the newest like already in the sets. A run reads
likes from ``watermark - overlap`` on, so rows at the watermark's own timestamp (ties) and rows committed late with a
slightly older timestamp are read again; SADD makes re-reading harmless, so a second run adds nothing. The
watermark moves only after the sets of a window are written, and only forward, so a crash or two concurrent runs
never skip a like.

The watermark never moves past now: a like dated in the future (a clock error, 2099) is added to its set like any
other, but only likes dated up to now move the watermark, so every later like is still read (the future one is
read again by each run, harmlessly). A watermark found in the future
(stored before this rule, or by a build with a future ``--as-of``) tells nothing about what was synced: the sync
starts again from the first like.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import polars as pl
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.pipeline.extract import load_feed
from common.columns import Action, Col, Table
from common.db import naive_utc_now
from common.errors import PostrecError
from common.keys import KeyLayout

log = logging.getLogger(__name__)

USERS_PER_PIPELINE: Final = 2_000
DEFAULT_WINDOW: Final = timedelta(days=7)
WATERMARK_FORMAT: Final = "microseconds"

# Sets the watermark only when the new value is later. ISO timestamps of one fixed format order as text, so the
# comparison can run inside Redis, atomically with the write.
ADVANCE_LUA: Final = """
local current = redis.call('GET', KEYS[1])
if current and current >= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync did.

    Attributes:
        rows: Like rows read from PostgreSQL (re-read ties and overlap included).
        added: Posts newly added to liked sets; 0 when everything read was already there.
        watermark: The watermark after the run, None when there are no likes at all.
        seconds: Wall time of the run.
    """

    rows: int
    added: int
    watermark: datetime | None
    seconds: float


def sync_likes(
    engine: Engine,
    client: redis.Redis[bytes],
    keys: KeyLayout,
    overlap: timedelta = timedelta(0),
    window: timedelta = DEFAULT_WINDOW,
    now: datetime | None = None,
) -> SyncReport:
    """Add every like at or after ``watermark - overlap`` to its user's liked set, then advance the watermark.

    Args:
        engine: Engine on the source database.
        client: Redis client of the serving store.
        keys: Key layout of the deployment.
        overlap: How far before the watermark to read again, for rows committed late with older timestamps.
        window: Likes are read and written one time window at a time, which bounds memory and lets the watermark
            advance as the sync goes.
        now: The present (naive UTC), past which the watermark never moves; None = the clock.

    Returns:
        Rows read, posts added, and the new watermark.
    """
    started = time.perf_counter()
    now = now or naive_utc_now()
    watermark = _present_watermark(client, keys, now)
    start = None if watermark is None else watermark - overlap
    rows = added = 0
    for lower, upper in like_windows(engine, start, window, now):
        likes = load_feed(engine, start=lower, end=upper, action=Action.LIKE)
        rows, added = rows + likes.height, added + add_likes(client, keys, likes)
        present = likes.filter(pl.col(Col.TIMESTAMP) <= now)
        if present.height:
            watermark = advance_watermark(client, keys, present[Col.TIMESTAMP].max())  # type: ignore[arg-type]
    report = SyncReport(rows, added, watermark, time.perf_counter() - started)
    log.info("likes synced: rows=%d added=%d watermark=%s seconds=%.2f", rows, added, watermark, report.seconds)
    return report


def _present_watermark(client: redis.Redis[bytes], keys: KeyLayout, now: datetime) -> datetime | None:
    """The stored watermark, or None (sync every like) after deleting one that lies in the future."""
    watermark = read_watermark(client, keys)
    if watermark is None or watermark <= now:
        return watermark
    log.warning("likes watermark %s is in the future: syncing every like again", watermark.isoformat(sep=" "))
    client.delete(keys.likes_watermark)
    return None


def like_windows(
    engine: Engine, start: datetime | None, window: timedelta, now: datetime
) -> Iterator[tuple[datetime, datetime | None]]:
    """Windows covering the likes at or after ``start`` (every like when None), from the database's time range.

    Windows stop at ``now``: the last one is open-ended and also holds any like dated in the future, which would
    otherwise make thousands of empty windows up to its date.
    """
    first, last = _like_time_range(engine, start)
    if first is not None and last is not None:
        yield from split_windows(first, min(last, max(first, now)), window)


def split_windows(first: datetime, last: datetime, window: timedelta) -> Iterator[tuple[datetime, datetime | None]]:
    """Consecutive ``[lower, upper)`` windows from ``first`` past ``last``; the last window is open-ended.

    The open end lets the last window read likes inserted while the sync runs.
    """
    lower = first
    while lower + window <= last:
        yield lower, lower + window
        lower += window
    yield lower, None


def _like_time_range(engine: Engine, start: datetime | None) -> tuple[datetime | None, datetime | None]:
    where = f"{Col.ACTION} = :like" + ("" if start is None else f' AND "{Col.TIMESTAMP}" >= :start')
    sql = f'SELECT min("{Col.TIMESTAMP}"), max("{Col.TIMESTAMP}") FROM {Table.FEED} WHERE {where}'
    with engine.connect() as conn:
        row = conn.execute(sa.text(sql), {"like": Action.LIKE, "start": start}).one()
    return row[0], row[1]


def add_likes(client: redis.Redis[bytes], keys: KeyLayout, likes: pl.DataFrame) -> int:
    """SADD each user's liked posts to its set, a few thousand users per pipeline.

    Args:
        client: Redis client of the serving store.
        keys: Key layout of the deployment.
        likes: Like rows with at least ``user_id`` and ``post_id``.

    Returns:
        How many posts were new to their sets.
    """
    per_user = likes.group_by(Col.USER_ID).agg(pl.col(Col.POST_ID).unique())
    added = 0
    for chunk in per_user.iter_slices(USERS_PER_PIPELINE):
        with client.pipeline(transaction=False) as pipe:
            for user_id, post_ids in chunk.iter_rows():
                pipe.sadd(keys.liked(user_id), *post_ids)
            added += sum(pipe.execute())
    return added


def read_watermark(client: redis.Redis[bytes], keys: KeyLayout) -> datetime | None:
    """The timestamp of the newest like already synced, None before the first sync.

    Raises:
        PostrecError: The stored value is not a timestamp.
    """
    raw = client.get(keys.likes_watermark)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.decode())
    except ValueError:
        raise PostrecError(
            f"{keys.likes_watermark} holds {raw!r}, not a timestamp: delete it to sync every like again"
        ) from None


def advance_watermark(client: redis.Redis[bytes], keys: KeyLayout, newest: datetime) -> datetime:
    """Move the watermark to ``newest`` unless it is already later; return the watermark now stored."""
    client.register_script(ADVANCE_LUA)(keys=[keys.likes_watermark], args=[format_watermark(newest)])
    stored = read_watermark(client, keys)
    return newest if stored is None else stored


def format_watermark(moment: datetime) -> str:
    """The watermark's text form: ISO 8601 with microseconds always present, so values order as text."""
    return moment.isoformat(timespec=WATERMARK_FORMAT)
