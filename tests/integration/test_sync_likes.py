"""The likes sync against real PostgreSQL and Redis: idempotent, incremental, exact at the watermark's ties."""

from __future__ import annotations

from datetime import datetime, timedelta

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from common.keys import KeyLayout
from worker.likes import advance_watermark, format_watermark, read_watermark, sync_likes

T0 = datetime(2021, 10, 1, 6, 0)


def insert_feed(engine: Engine, rows: list[tuple[datetime, int, int, str, int | None]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO feed_data VALUES (:ts, :user, :post, :action, :target)"),
            [dict(zip(("ts", "user", "post", "action", "target"), row, strict=True)) for row in rows],
        )


def liked(client: redis.Redis, keys: KeyLayout, user_id: int) -> set[int]:
    return {int(member) for member in client.smembers(keys.liked(user_id))}


def like(minutes: float, user_id: int, post_id: int, target: int | None = None) -> tuple:
    return (T0 + timedelta(minutes=minutes), user_id, post_id, "like", target)


def view(minutes: float, user_id: int, post_id: int) -> tuple:
    return (T0 + timedelta(minutes=minutes), user_id, post_id, "view", 1)


def test_first_sync_adds_every_like_and_no_view(engine: Engine, redis_client: redis.Redis, keys: KeyLayout) -> None:
    insert_feed(engine, [view(0, 200, 1), like(1, 200, 1), like(2, 200, 7, 0), view(3, 201, 5), like(4, 201, 2)])
    report = sync_likes(engine, redis_client, keys)
    assert (report.rows, report.added) == (3, 3)
    assert liked(redis_client, keys, 200) == {1, 7}
    assert liked(redis_client, keys, 201) == {2}
    assert read_watermark(redis_client, keys) == T0 + timedelta(minutes=4)


def test_second_run_adds_nothing(engine: Engine, redis_client: redis.Redis, keys: KeyLayout) -> None:
    insert_feed(engine, [like(1, 200, 1), like(2, 200, 7), like(4, 201, 2)])
    sync_likes(engine, redis_client, keys)
    again = sync_likes(engine, redis_client, keys, overlap=timedelta(minutes=10))
    assert again.added == 0
    assert again.watermark == T0 + timedelta(minutes=4)
    assert redis_client.scard(keys.liked(200)) == 2


def test_like_inserted_after_a_sync_is_picked_up_by_the_next(
    engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    insert_feed(engine, [like(1, 200, 1)])
    sync_likes(engine, redis_client, keys)
    insert_feed(engine, [like(30, 200, 9), like(31, 202, 3)])
    report = sync_likes(engine, redis_client, keys)
    assert report.added == 2
    assert liked(redis_client, keys, 200) == {1, 9}
    assert liked(redis_client, keys, 202) == {3}
    assert report.watermark == T0 + timedelta(minutes=31)


def test_like_with_the_watermarks_own_timestamp_is_not_skipped(
    engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    insert_feed(engine, [like(5, 200, 1)])
    sync_likes(engine, redis_client, keys)
    insert_feed(engine, [like(5, 201, 4)])  # a tie, committed after the first sync read its timestamp
    report = sync_likes(engine, redis_client, keys, overlap=timedelta(0))
    assert report.added == 1
    assert liked(redis_client, keys, 201) == {4}


def test_overlap_picks_up_a_like_committed_late_with_an_older_timestamp(
    engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    insert_feed(engine, [like(10, 200, 1)])
    sync_likes(engine, redis_client, keys)
    insert_feed(engine, [like(9.5, 203, 6)])
    without = sync_likes(engine, redis_client, keys, overlap=timedelta(0))
    with_overlap = sync_likes(engine, redis_client, keys, overlap=timedelta(minutes=1))
    assert (without.added, with_overlap.added) == (0, 1)
    assert with_overlap.watermark == T0 + timedelta(minutes=10)


def test_small_windows_give_the_same_sets_as_one(engine: Engine, redis_client: redis.Redis, keys: KeyLayout) -> None:
    rows = [like(minutes, 200 + minutes % 3, minutes) for minutes in range(0, 3 * 24 * 60, 97)]
    insert_feed(engine, rows)
    report = sync_likes(engine, redis_client, keys, window=timedelta(hours=5))
    assert report.added == len(rows)
    assert sum(redis_client.scard(keys.liked(user)) for user in (200, 201, 202)) == len(rows)
    assert report.watermark == max(row[0] for row in rows)


def test_no_likes_leaves_no_watermark(engine: Engine, redis_client: redis.Redis, keys: KeyLayout) -> None:
    insert_feed(engine, [view(0, 200, 1)])
    report = sync_likes(engine, redis_client, keys)
    assert (report.rows, report.added, report.watermark) == (0, 0, None)
    assert redis_client.get(keys.likes_watermark) is None


def test_watermark_only_moves_forward(redis_client: redis.Redis, keys: KeyLayout) -> None:
    later, earlier = T0 + timedelta(hours=2), T0 + timedelta(hours=1)
    advance_watermark(redis_client, keys, later)
    assert advance_watermark(redis_client, keys, earlier) == later
    assert redis_client.get(keys.likes_watermark) == format_watermark(later).encode()


def test_a_like_dated_in_the_future_does_not_stop_later_likes(
    engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    insert_feed(engine, [like(1, 200, 1), (datetime(2099, 1, 1), 200, 9, "like", None)])
    first = sync_likes(engine, redis_client, keys, now=T0 + timedelta(minutes=10))
    assert liked(redis_client, keys, 200) == {1, 9}
    assert first.watermark == T0 + timedelta(minutes=1)

    insert_feed(engine, [like(5, 201, 3), like(15, 202, 4)])
    later = sync_likes(engine, redis_client, keys, now=T0 + timedelta(minutes=20))

    assert liked(redis_client, keys, 201) == {3} and liked(redis_client, keys, 202) == {4}
    assert later.watermark == T0 + timedelta(minutes=15)
    assert read_watermark(redis_client, keys) == T0 + timedelta(minutes=15)


def test_a_watermark_found_in_the_future_is_dropped_and_every_like_synced(
    engine: Engine, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    insert_feed(engine, [like(1, 200, 1), like(2, 201, 2)])
    redis_client.set(keys.likes_watermark, format_watermark(datetime(2099, 1, 1)))

    report = sync_likes(engine, redis_client, keys, now=T0 + timedelta(minutes=10))

    assert (report.rows, report.added) == (2, 2)
    assert read_watermark(redis_client, keys) == T0 + timedelta(minutes=2)
