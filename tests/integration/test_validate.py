"""Validation reports every broken rule in one run, with counts and examples, on a real PostgreSQL database; the
polars form of each row rule (used by ``postrec load``) finds the same rows as its SQL form (used by the build)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.ingest.files import LOAD_SCHEMAS
from batch.pipeline.extract import copy_query
from batch.pipeline.rules import ROW_RULES, RuleContext
from batch.pipeline.validate import validate_connection, validate_source
from common.errors import DataValidationError

CUTOFF = datetime(2022, 1, 1)
USERS = [
    (200, 20, "Moscow", "Russia", 0, 1, "Android", "ads"),
    (201, -5, "Minsk", "Belarus", 1, 0, "iOS", "organic"),
    (202, 500, "Minsk", "Belarus", 1, 0, "iOS", "organic"),
    (203, None, "Minsk", "Belarus", 1, 0, "iOS", "organic"),
    (200, 30, "Moscow", "Russia", 0, 1, "Android", "ads"),
    (None, 30, "Moscow", "Russia", 0, 1, "Android", "ads"),
]
POSTS = [
    (1, "text", "movie"),
    (2, None, "covid"),
    (3, "x", None),
    (4, None, None),
    (None, "y", "tech"),
    (1, "z", "tech"),
]
FEED = [
    ("2021-10-01 06:00", 200, 1, "view", 1),
    ("2021-10-01 06:01", 200, 1, "like", None),
    ("2021-10-01 06:00", 200, 1, "view", 1),  # exact duplicate of the first row
    ("2021-10-02 00:00", 201, 3, "like", 0),  # a like with no view
    ("2021-10-03 00:00", 202, 3, "view", 0),
    ("2021-10-03 00:00", 202, 3, "like", None),  # liked in the second of its view: fine
    ("2021-10-04 00:00", None, 1, "view", 0),
    ("2021-10-04 00:00", 200, None, "view", 0),
    (None, 200, 2, "view", 0),
    ("2021-10-04 00:00", 200, 2, "share", 0),
    ("2021-10-04 00:01", 200, 2, None, 0),
    ("2021-10-04 00:02", 200, 2, "view", 7),
    ("2021-10-05 00:00", 200, 3, "view", None),
    ("2021-10-05 00:00", 999, 1, "view", 0),
    ("2021-10-05 00:00", 200, 77, "view", 0),
    ("2099-01-01 00:00", 200, 4, "like", None),  # in the future, and a like with no view
]
# (table, column, start of the problem) -> rows, counted by hand from the rows above.
EXPECTED = {
    ("user_data", "user_id", "NULL key"): 1,
    ("user_data", "user_id", "duplicate key"): 1,
    ("user_data", "age", "impossible age"): 2,
    ("post_text_df", "post_id", "NULL key"): 1,
    ("post_text_df", "post_id", "duplicate key"): 1,
    ("post_text_df", "text", "NULL text"): 2,
    ("post_text_df", "topic", "NULL topic"): 2,
    ("feed_data", "user_id", "NULL key"): 1,
    ("feed_data", "post_id", "NULL key"): 1,
    ("feed_data", "timestamp", "NULL timestamp"): 1,
    ("feed_data", "action", "unknown action"): 2,
    ("feed_data", "target", "target outside"): 1,
    ("feed_data", "target", "view with a NULL target"): 1,
    ("feed_data", "user_id", "user missing"): 1,
    ("feed_data", "post_id", "post missing"): 1,
    ("feed_data", "timestamp", "dated at or after"): 1,
    ("feed_data", "timestamp", "exact duplicate rows"): 1,
    ("feed_data", "action", "likes with no view"): 2,
}
WARNINGS = {
    "impossible age",
    "NULL text",
    "NULL topic",
    "dated at or after",
    "exact duplicate rows",
    "likes with no view",
}


def insert_everything_bad(engine: Engine) -> None:
    with engine.begin() as conn:
        for table, key in (("user_data", "user_id"), ("post_text_df", "post_id")):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey"))
            conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN {key} DROP NOT NULL"))
        conn.execute(
            sa.text("INSERT INTO user_data VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
            [dict(zip("abcdefgh", row, strict=True)) for row in USERS],
        )
        conn.execute(
            sa.text("INSERT INTO post_text_df VALUES (:a, :b, :c)"),
            [dict(zip("abc", row, strict=True)) for row in POSTS],
        )
        conn.execute(
            sa.text("INSERT INTO feed_data VALUES (CAST(:a AS timestamp), :b, :c, :d, :e)"),
            [dict(zip("abcde", row, strict=True)) for row in FEED],
        )


def found(report) -> dict[tuple[str, str, str], int]:
    counts = {}
    for finding in report.findings:
        keys = [k for k in EXPECTED if k[:2] == (finding.table, finding.column) and finding.problem.startswith(k[2])]
        assert len(keys) == 1, finding
        counts[keys[0]] = finding.count
    return counts


def test_every_broken_rule_is_counted_in_one_run(engine: Engine) -> None:
    insert_everything_bad(engine)
    with engine.connect() as conn:
        report = validate_connection(conn, CUTOFF)
    assert found(report) == EXPECTED
    assert all(finding.example is not None for finding in report.findings)
    duplicate = next(f for f in report.findings if f.problem.startswith("exact duplicate"))
    assert dict(duplicate.example) == {
        "timestamp": "2021-10-01 06:00:00",
        "user_id": 200,
        "post_id": 1,
        "action": "view",
        "target": 1,
    }
    orphan = next(f for f in report.findings if f.problem.startswith("likes with no view"))
    assert (orphan.example["user_id"], orphan.example["post_id"]) in {(201, 3), (200, 4)}


def test_the_refusal_names_every_problem_then_every_warning(engine: Engine) -> None:
    insert_everything_bad(engine)
    with pytest.raises(DataValidationError) as caught:
        validate_source(engine, CUTOFF)
    lines = [line.strip() for line in str(caught.value).splitlines()]
    assert lines[0] == "12 problem(s) in the source data stop the batch:"
    warnings_from = lines.index("and these are only warnings:")
    for (table, column, problem), _ in EXPECTED.items():
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{table}.{column}: {problem}"))
        assert (at > warnings_from) == (problem in WARNINGS), problem
    assert "feed_data.action: unknown action (expected view or like): 2 rows; example row {" in str(caught.value)


def test_warnings_alone_do_not_stop_the_batch(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_data VALUES (200, -5, 'Moscow', 'Russia', 0, 1, 'iOS', 'ads')"))
        conn.execute(sa.text("INSERT INTO post_text_df VALUES (1, NULL, NULL)"))
        conn.execute(sa.text("INSERT INTO feed_data VALUES ('2021-10-01 06:00', 200, 1, 'like', 0)"))
        conn.execute(sa.text("INSERT INTO feed_data VALUES ('2021-10-01 06:00', 200, 1, 'like', 0)"))
    report = validate_source(engine, CUTOFF)
    assert {finding.problem.split(" (")[0] for finding in report.warned} == {
        "impossible age",
        "NULL text",
        "NULL topic",
        "exact duplicate rows",
        "likes with no view of the post by the user at or before them",
    }
    assert report.refused == ()


def table_frame(engine: Engine, table: str) -> pl.DataFrame:
    schema = LOAD_SCHEMAS[table]
    columns = ", ".join(f'"{name}"' for name in schema)
    return copy_query(engine, f"SELECT {columns} FROM {table}", schema)


def test_each_rule_finds_the_same_rows_in_polars_as_in_sql(engine: Engine) -> None:
    insert_everything_bad(engine)
    frames = {table: table_frame(engine, table) for table in LOAD_SCHEMAS}
    context = RuleContext(
        user_ids=frames["user_data"]["user_id"].drop_nulls(),
        post_ids=frames["post_text_df"]["post_id"].drop_nulls(),
        cutoff=CUTOFF,
    )
    with engine.connect() as conn:
        report = validate_connection(conn, CUTOFF)
    sql_counts = {(f.table, f.column, f.problem): f.count for f in report.findings}
    for rule in ROW_RULES:
        polars_count = int(frames[rule.table].select(rule.check(context).fill_null(False).sum()).item())
        assert polars_count == sql_counts.get((rule.table, rule.column, rule.problem), 0), rule.problem
        assert polars_count > 0, f"the rows above break every rule: {rule.problem}"
