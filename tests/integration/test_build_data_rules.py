"""``postrec build`` on bad data, on the tiny world and the real servers: future rows are ignored and counted, every
refused problem is printed in one run with the live version untouched, and warned rows are counted and published."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from batch.pipeline.build import run_build
from batch.world.seed import seed_database
from postrec.cli import main
from tests.integration.test_build import OPTIONS, cli_env, prefix_keys

BAD_ROWS = [
    # Refused: each stops the build.
    "INSERT INTO feed_data VALUES ('2021-12-01', 200, 1, 'share', 0)",
    "INSERT INTO feed_data VALUES ('2021-12-01', 999999, 1, 'view', 0)",
    "INSERT INTO feed_data VALUES ('2021-12-01', 200, 99999, 'view', 0)",
    "INSERT INTO feed_data VALUES (NULL, 200, 1, 'view', 0)",
    "INSERT INTO feed_data VALUES ('2021-12-01', 200, 1, 'view', 5)",
    "INSERT INTO feed_data VALUES ('2021-12-01', NULL, 1, 'view', 0)",
    # Warned: counted, handled, published.
    "INSERT INTO feed_data SELECT * FROM feed_data WHERE action = 'view' LIMIT 7",
    "INSERT INTO feed_data VALUES ('2021-10-20 12:00', 200, 3, 'like', NULL)",
    "UPDATE post_text_df SET text = NULL WHERE post_id = (SELECT min(post_id) FROM post_text_df)",
    "UPDATE post_text_df SET topic = NULL WHERE post_id = (SELECT max(post_id) FROM post_text_df)",
    "UPDATE user_data SET age = -5 WHERE user_id = 200",
    "UPDATE user_data SET age = 500 WHERE user_id = 201",
    "INSERT INTO feed_data VALUES ('2099-01-01 00:00', 201, 1, 'like', NULL)",
]
REFUSED = [
    "feed_data.action: unknown action (expected view or like): 1 rows",
    "feed_data.user_id: user missing from user_data: 1 rows",
    "feed_data.post_id: post missing from post_text_df: 1 rows",
    "feed_data.timestamp: NULL timestamp: 1 rows",
    "feed_data.target: target outside 0, 1 and NULL: 1 rows",
    "feed_data.user_id: NULL key: 1 rows",
]
WARNED = [
    "feed_data.timestamp: exact duplicate rows (every column equal): 7 extra rows",
    "feed_data.action: likes with no view of the post by the user at or before them:",
    "post_text_df.text: NULL text: 1 rows",
    "post_text_df.topic: NULL topic: 1 rows",
    "user_data.age: impossible age (outside 1..120): 2 rows",
    "feed_data.timestamp: dated at or after the cutoff (in the future, or after --as-of): 1 rows",
]


@pytest.fixture
def world(engine):
    seed_database(engine, "tiny", 42)
    return engine


def run_sql(engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def last_row_time(engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(
            sa.text('SELECT max("timestamp") FROM feed_data WHERE "timestamp" < \'2099-01-01\'')
        ).scalar()


def test_a_like_dated_2099_is_ignored_and_counted(settings, world, redis_client, keys, caplog):
    end = last_row_time(world)
    run_sql(world, ["INSERT INTO feed_data VALUES ('2099-01-01 00:00', 201, 1, 'like', NULL)"])

    with caplog.at_level(logging.INFO):
        built = run_build(settings, world, OPTIONS)

    source = built.prepared.source
    assert source.as_of == datetime.combine(end.date(), datetime.min.time()) + timedelta(days=1)
    assert redis_client.get(keys.current).decode() == built.version
    assert source.ignored_rows == 1
    assert f"feed rows at or after as_of {source.as_of.isoformat(sep=' ')}: 1 ignored" in caplog.text
    assert source.likes["timestamp"].max() < source.as_of


def test_every_problem_is_printed_in_one_run_and_the_live_version_stays(
    settings, world, redis_client, keys, monkeypatch, capfd
):
    live = run_build(settings, world, OPTIONS).version
    before = sorted(prefix_keys(redis_client, keys))
    run_sql(world, BAD_ROWS)
    cli_env(monkeypatch, settings)
    capfd.readouterr()

    code = main(["build", "--k", "5"])

    err = capfd.readouterr().err
    assert code == 2
    assert "6 problem(s) in the source data stop the batch:" in err
    for line in REFUSED + WARNED:
        assert line in err, line
    assert "Traceback" not in err
    assert redis_client.get(keys.current).decode() == live
    assert sorted(prefix_keys(redis_client, keys)) == before


def test_warned_rows_are_counted_and_the_build_publishes(settings, world, redis_client, keys, caplog):
    run_sql(world, BAD_ROWS[6:])

    with caplog.at_level(logging.WARNING):
        built = run_build(settings, world, OPTIONS)

    source = built.prepared.source
    assert redis_client.get(keys.current).decode() == built.version
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    for line in WARNED:
        assert any(line in message for message in warnings), line
    assert source.users.filter(source.users["user_id"].is_in([200, 201]))["age"].to_list() == [None, None]
    assert "" in source.posts["text"].to_list() and "" in source.posts["topic"].to_list()
