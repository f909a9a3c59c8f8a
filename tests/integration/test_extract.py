"""Extract and validation against a real PostgreSQL database, one test per class of bad input."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.pipeline.extract import FEED_SCHEMA, copy_query, load_feed, load_posts, load_users
from batch.pipeline.validate import validate_source
from common.db import make_engine
from common.errors import DataValidationError, SourceUnavailableError

USERS = [
    (200, 20, "Moscow", "Russia", 0, 1, "Android", "ads"),
    (201, 35, "Minsk", "Belarus", 3, 0, "iOS", "organic"),
]
POSTS = [(1, "Markets rally, as banks, report profits", "business"), (2, 'A "great" horror film\nwith scares', "movie")]
PAIR_SCHEMA = {"user_id": pl.Int32(), "post_id": pl.Int32()}
FEED = [
    ("2021-10-01 06:01:00", 200, 1, "view", 1),
    ("2021-10-01 06:02:33.25", 200, 1, "like", None),
    ("2021-10-02 10:00:00", 201, 2, "view", 0),
    ("2021-10-03 11:00:00", 201, 1, "like", 0),
]


def insert(engine: Engine, users: list[tuple] = USERS, posts: list[tuple] = POSTS, feed: list[tuple] = FEED) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO user_data VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
            [dict(zip("abcdefgh", row, strict=True)) for row in users],
        )
        conn.execute(
            sa.text("INSERT INTO post_text_df VALUES (:a, :b, :c)"),
            [dict(zip("abc", row, strict=True)) for row in posts],
        )
        conn.execute(
            sa.text("INSERT INTO feed_data VALUES (:a, :b, :c, :d, :e)"),
            [dict(zip("abcde", row, strict=True)) for row in feed],
        )


def test_round_trip_keeps_values_and_compact_types(engine: Engine) -> None:
    insert(engine)
    users, posts, feed = load_users(engine), load_posts(engine), load_feed(engine)
    assert users["user_id"].to_list() == [200, 201]
    assert users.schema["age"] == pl.Int16 and users["city"].to_list() == ["Moscow", "Minsk"]
    assert posts["text"].to_list() == [POSTS[0][1], POSTS[1][1]]
    assert feed.schema == pl.Schema(FEED_SCHEMA)
    assert feed["target"].to_list() == [1, None, 0, 0]
    assert feed["timestamp"][1] == datetime(2021, 10, 1, 6, 2, 33, 250000)


def test_feed_window_and_action_filters(engine: Engine) -> None:
    insert(engine)
    window = load_feed(engine, start=datetime(2021, 10, 1, 6, 2), end=datetime(2021, 10, 3))
    assert window["user_id"].to_list() == [200, 201]
    assert load_feed(engine, action="like")["post_id"].to_list() == [1, 1]


def test_small_chunks_give_the_same_frame(engine: Engine) -> None:
    insert(engine)
    sql = 'SELECT "timestamp", user_id, post_id, action, target FROM feed_data ORDER BY "timestamp"'
    whole = copy_query(engine, sql, FEED_SCHEMA)
    chunked = copy_query(engine, sql, FEED_SCHEMA, chunk_bytes=10)
    assert chunked.equals(whole) and whole.height == 4


def test_chunk_reducer_gives_the_distinct_rows_however_small_the_chunks(engine: Engine) -> None:
    insert(engine, feed=FEED * 3)
    sql = "SELECT user_id, post_id FROM feed_data"
    for chunk_bytes in (1, 10, 2**20):
        pairs = copy_query(engine, sql, PAIR_SCHEMA, chunk_bytes=chunk_bytes, reduce=lambda frame: frame.unique())
        assert sorted(pairs.rows()) == [(200, 1), (201, 1), (201, 2)]


def test_valid_source_passes(engine: Engine) -> None:
    insert(engine)
    validate_source(engine)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("DROP TABLE feed_data", "table feed_data does not exist"),
        ("ALTER TABLE post_text_df DROP COLUMN topic", "table post_text_df: missing column topic"),
        ("ALTER TABLE user_data ALTER COLUMN age TYPE text", "user_data.age: type text"),
        (
            "ALTER TABLE user_data DROP CONSTRAINT user_data_pkey;"
            " ALTER TABLE user_data ALTER COLUMN user_id DROP NOT NULL;"
            " INSERT INTO user_data (user_id) VALUES (NULL)",
            "user_data.user_id: NULL key",
        ),
        ("INSERT INTO feed_data VALUES ('2021-10-05', NULL, 1, 'view', 0)", "feed_data.user_id: NULL key"),
        ("INSERT INTO feed_data VALUES ('2021-10-05', 200, 1, 'share', 0)", "feed_data.action: unknown action"),
        ("INSERT INTO feed_data VALUES ('2021-10-05', 999, 1, 'view', 0)", "feed_data.user_id: user missing"),
        ("INSERT INTO feed_data VALUES ('2021-10-05', 200, 77, 'view', 0)", "feed_data.post_id: post missing"),
        ("INSERT INTO feed_data VALUES ('2021-10-05', 200, 1, 'view', 7)", "feed_data.target: target outside"),
        # A row breaking two rules counts for both.
        ("INSERT INTO feed_data VALUES ('2021-10-05', 999, 1, 'view', 7)", "feed_data.target: target outside"),
        ("INSERT INTO feed_data VALUES ('2021-10-05', 999, 1, 'view', 7)", "feed_data.user_id: user missing"),
    ],
)
def test_bad_input_is_named_on_one_line(engine: Engine, statement: str, message: str) -> None:
    insert(engine)
    with engine.begin() as conn:
        for part in statement.split(";"):
            conn.execute(sa.text(part))
    with pytest.raises(DataValidationError) as caught:
        validate_source(engine)
    lines = [line.strip() for line in str(caught.value).splitlines()]
    assert any(line.startswith(message) for line in lines), lines


def test_wrong_type_and_row_errors_show_an_example_row(engine: Engine) -> None:
    insert(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO feed_data VALUES ('2021-10-05 08:00', 999, 1, 'view', 0)"))
    with pytest.raises(DataValidationError, match=r"example row \{'timestamp': '2021-10-05 08:00:00', 'user_id': 999"):
        validate_source(engine)


def test_unreachable_postgres_is_a_clear_error() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/postrec")
    with pytest.raises(SourceUnavailableError, match=r"PostgreSQL at .*:1/postrec is unreachable"):
        validate_source(engine)
