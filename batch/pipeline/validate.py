"""Validation of the source tables before a batch reads them: one clear line naming table, column and an example
row for the first problem found, so invalid data stops the batch before anything is written anywhere."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from common.columns import Action, Col, Table
from common.db import check_connection
from common.errors import DataValidationError

log = logging.getLogger(__name__)

INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
TEXT_TYPES = frozenset({"text", "character varying", "character"})
TIMESTAMP_TYPES = frozenset({"timestamp without time zone", "timestamp with time zone"})

EXPECTED_COLUMNS: Mapping[str, Mapping[str, frozenset[str]]] = {
    Table.USERS: {
        Col.USER_ID: INTEGER_TYPES,
        Col.AGE: INTEGER_TYPES,
        Col.CITY: TEXT_TYPES,
        Col.COUNTRY: TEXT_TYPES,
        Col.EXP_GROUP: INTEGER_TYPES,
        Col.GENDER: INTEGER_TYPES,
        Col.OS: TEXT_TYPES,
        Col.SOURCE: TEXT_TYPES,
    },
    Table.POSTS: {Col.POST_ID: INTEGER_TYPES, Col.TEXT: TEXT_TYPES, Col.TOPIC: TEXT_TYPES},
    Table.FEED: {
        Col.TIMESTAMP: TIMESTAMP_TYPES,
        Col.USER_ID: INTEGER_TYPES,
        Col.POST_ID: INTEGER_TYPES,
        Col.ACTION: TEXT_TYPES,
        Col.TARGET: INTEGER_TYPES,
    },
}

# Each rule: the table, the column it blames, the problem, and a WHERE clause over alias t (plus u / p for the
# feed's user and post joined by key) that selects offending rows.
ROW_RULES: Sequence[tuple[str, str, str, str]] = (
    (Table.USERS, Col.USER_ID, "NULL key", f"t.{Col.USER_ID} IS NULL"),
    (Table.POSTS, Col.POST_ID, "NULL key", f"t.{Col.POST_ID} IS NULL"),
    (Table.FEED, Col.USER_ID, "NULL key", f"t.{Col.USER_ID} IS NULL"),
    (Table.FEED, Col.POST_ID, "NULL key", f"t.{Col.POST_ID} IS NULL"),
    (Table.FEED, Col.TIMESTAMP, "NULL timestamp", f't."{Col.TIMESTAMP}" IS NULL'),
    (
        Table.FEED,
        Col.ACTION,
        f"unknown action (expected {' or '.join(Action.ALL)})",
        f"t.{Col.ACTION} IS NULL OR t.{Col.ACTION} NOT IN ({', '.join(repr(a) for a in Action.ALL)})",
    ),
    (Table.FEED, Col.TARGET, "target outside 0, 1 and NULL", f"t.{Col.TARGET} NOT IN (0, 1)"),
    (
        Table.FEED,
        Col.USER_ID,
        f"user missing from {Table.USERS}",
        f"u.{Col.USER_ID} IS NULL AND t.{Col.USER_ID} IS NOT NULL",
    ),
    (
        Table.FEED,
        Col.POST_ID,
        f"post missing from {Table.POSTS}",
        f"p.{Col.POST_ID} IS NULL AND t.{Col.POST_ID} IS NOT NULL",
    ),
)
FEED_JOINS = (
    f" LEFT JOIN {Table.USERS} u ON u.{Col.USER_ID} = t.{Col.USER_ID}"
    f" LEFT JOIN {Table.POSTS} p ON p.{Col.POST_ID} = t.{Col.POST_ID}"
)


def validate_source(engine: Engine) -> None:
    """Check tables, columns, types and rows of the source; raise on the first problem.

    Raises:
        SourceUnavailableError: PostgreSQL cannot be reached.
        DataValidationError: A table or column is missing, a column has the wrong type, or a row breaks a rule.
    """
    check_connection(engine)
    with engine.connect() as conn:
        for table, expected in EXPECTED_COLUMNS.items():
            _check_columns(conn, table, expected)
        _check_rows(conn)
    log.info("source valid: tables=%s", ",".join(EXPECTED_COLUMNS))


def _check_columns(conn: Connection, table: str, expected: Mapping[str, frozenset[str]]) -> None:
    found = _column_types(conn, table)
    if not found:
        raise DataValidationError(f"table {table} does not exist: run `postrec db init` and load or seed the data")
    for column, allowed in expected.items():
        if column not in found:
            raise DataValidationError(f"table {table}: missing column {column} (has {', '.join(sorted(found))})")
        if found[column] not in allowed:
            example = _example(conn, f"SELECT * FROM {table} t LIMIT 1")
            raise DataValidationError(
                f"{table}.{column}: type {found[column]}, expected one of {', '.join(sorted(allowed))}; "
                f"example row {example}"
            )


def _column_types(conn: Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table"
        ),
        {"table": table},
    )
    return {str(name): str(dtype) for name, dtype in rows}


RULE_FLAG = "_broken_rule_{}"


def _check_rows(conn: Connection) -> None:
    """One scan per table for all of its rules (the feed has 77 million rows at full scale), reporting the first
    offending row found and the first rule it breaks."""
    for table in dict.fromkeys(rule[0] for rule in ROW_RULES):
        rules = [rule for rule in ROW_RULES if rule[0] == table]
        flags = ", ".join(f"({rule[3]}) IS TRUE AS {RULE_FLAG.format(i)}" for i, rule in enumerate(rules))
        broken = " OR ".join(f"({rule[3]})" for rule in rules)
        joins = FEED_JOINS if table == Table.FEED else ""
        example = _example(conn, f"SELECT t.*, {flags} FROM {table} t{joins} WHERE {broken} LIMIT 1")
        if example is None:
            continue
        broken_flags = [example.pop(RULE_FLAG.format(i)) for i in range(len(rules))]
        _, column, problem, _ = rules[broken_flags.index(True)]
        raise DataValidationError(f"{table}.{column}: {problem}; example row {example}")


def _example(conn: Connection, sql: str) -> dict[str, Any] | None:
    row = conn.execute(sa.text(sql)).mappings().first()
    return None if row is None else {key: _plain(value) for key, value in row.items()}


def _plain(value: object) -> object:
    return value.isoformat(sep=" ") if hasattr(value, "isoformat") else value
