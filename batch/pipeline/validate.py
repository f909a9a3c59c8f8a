"""Validation of the source tables before a batch reads them: every problem in one run, each with its count and an
example row, so a user with ten kinds of bad rows fixes them after one run instead of ten.

Tables, columns and types are checked first (a missing or mistyped column stops there, every such problem listed).
Then each table's row rules (:mod:`batch.pipeline.rules`) are counted in one scan, with the first offending row's
``ctid`` kept so its example is fetched without a second scan; the keys' uniqueness in one aggregate per table; and
the feed's pair rules (duplicate rows, likes without a view) in one ordered pass that reuses the user index's order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from batch.pipeline.rules import (
    DUPLICATE_ROWS,
    KEY_RULES,
    LIKE_WITHOUT_VIEW,
    KeyRule,
    PairRule,
    RowRule,
    Severity,
    rules_of,
)
from common.columns import Action, Col, Table
from common.db import check_connection, naive_utc_now
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
# Distinct ids, so that a duplicated user or post (itself a finding) does not count its feed rows twice.
FEED_JOINS = (
    f" LEFT JOIN (SELECT DISTINCT {Col.USER_ID} FROM {Table.USERS}) u ON u.{Col.USER_ID} = t.{Col.USER_ID}"
    f" LEFT JOIN (SELECT DISTINCT {Col.POST_ID} FROM {Table.POSTS}) p ON p.{Col.POST_ID} = t.{Col.POST_ID}"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: how often, and an example.

    Attributes:
        table: The table.
        column: The column blamed.
        problem: What is wrong.
        severity: REFUSE or WARN.
        count: How many rows (or keys, or pairs: see ``unit``) break it.
        example: One offending row, as column -> value.
        unit: What ``count`` counts.
        handling: For WARN findings: what the batch does with the rows.
    """

    table: str
    column: str
    problem: str
    severity: Severity
    count: int
    example: Mapping[str, Any] | None
    unit: str = "rows"
    handling: str = ""

    def line(self) -> str:
        """One line naming table, column, problem, count, example and (for warnings) the handling."""
        text = f"{self.table}.{self.column}: {self.problem}: {self.count} {self.unit}"
        if self.example is not None:
            text += f"; example row {dict(self.example)}"
        return f"{text} -> {self.handling}" if self.handling else text


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every finding of one validation run, refusals first."""

    findings: tuple[Finding, ...]

    @property
    def refused(self) -> tuple[Finding, ...]:
        """The findings that stop the batch."""
        return tuple(f for f in self.findings if f.severity is Severity.REFUSE)

    @property
    def warned(self) -> tuple[Finding, ...]:
        """The findings that are counted and handled."""
        return tuple(f for f in self.findings if f.severity is Severity.WARN)

    def count(self, table: str, problem_start: str) -> int:
        """Rows of ``table`` counted by the finding whose problem starts with ``problem_start`` (0 if none)."""
        return sum(f.count for f in self.findings if f.table == table and f.problem.startswith(problem_start))

    def log(self, logger: logging.Logger) -> None:
        """One warning line per WARN finding."""
        for finding in self.warned:
            logger.warning("source data: %s", finding.line())

    def raise_if_refused(self, what: str = "the batch") -> None:
        """Raise one error listing every refusal, then every warning, when any rule refuses.

        Raises:
            DataValidationError: At least one REFUSE rule is broken.
        """
        if self.refused:
            raise DataValidationError(refusal_message(self.refused, self.warned, what))


def refusal_message(refused: tuple[Finding, ...], warned: tuple[Finding, ...], what: str) -> str:
    """Every problem on its own line: those that stop ``what`` first, then the warnings."""
    lines = [f"{len(refused)} problem(s) in the source data stop {what}:"]
    lines += [f"  {finding.line()}" for finding in refused]
    if warned:
        lines.append("and these are only warnings:")
        lines += [f"  {finding.line()}" for finding in warned]
    return "\n".join(lines)


def validate_source(engine: Engine, cutoff: datetime | None = None) -> ValidationReport:
    """Check tables, columns, types and rows of the source; raise listing every problem when a rule refuses.

    Args:
        engine: Engine on the source database.
        cutoff: Feed rows at or after it are counted as ignored (the build's as_of); None = now (UTC).

    Returns:
        The findings, all of them warnings (logged).

    Raises:
        SourceUnavailableError: PostgreSQL cannot be reached.
        DataValidationError: A table or column is missing or mistyped, or a REFUSE rule is broken.
    """
    check_connection(engine)
    with engine.connect() as conn:
        report = validate_connection(conn, cutoff or naive_utc_now())
    report.raise_if_refused()
    report.log(log)
    log.info("source valid: tables=%s warnings=%d", ",".join(EXPECTED_COLUMNS), len(report.warned))
    return report


def validate_connection(conn: Connection, cutoff: datetime) -> ValidationReport:
    """Every finding on the source, through an open connection (``postrec load`` validates inside its transaction).

    Raises:
        DataValidationError: A table or column is missing or mistyped (the rows cannot be checked then).
    """
    check_schema(conn)
    findings: list[Finding] = []
    for table in EXPECTED_COLUMNS:
        findings += _row_findings(conn, table, cutoff)
    findings += [_key_finding(conn, rule) for rule in KEY_RULES]
    findings += _pair_findings(conn)
    kept = [finding for finding in findings if finding.count]
    kept.sort(key=lambda finding: finding.severity is not Severity.REFUSE)
    return ValidationReport(tuple(kept))


def check_schema(conn: Connection) -> None:
    """Every table and column exists with an accepted type.

    Raises:
        DataValidationError: Listing every missing table, missing column and wrong type.
    """
    problems: list[str] = []
    for table, expected in EXPECTED_COLUMNS.items():
        problems += _column_problems(conn, table, expected)
    if problems:
        raise DataValidationError("\n".join([f"{len(problems)} problem(s) in the source schema:", *problems]))


def _column_problems(conn: Connection, table: str, expected: Mapping[str, frozenset[str]]) -> list[str]:
    found = _column_types(conn, table)
    if not found:
        return [f"  table {table} does not exist: run `postrec db init` and load or seed the data"]
    problems = []
    for column, allowed in expected.items():
        if column not in found:
            problems.append(f"  table {table}: missing column {column} (has {', '.join(sorted(found))})")
        elif found[column] not in allowed:
            example = _example(conn, f"SELECT * FROM {table} t LIMIT 1")
            problems.append(
                f"  {table}.{column}: type {found[column]}, expected one of {', '.join(sorted(allowed))}; "
                f"example row {example}"
            )
    return problems


def _column_types(conn: Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table"
        ),
        {"table": table},
    )
    return {str(name): str(dtype) for name, dtype in rows}


def _row_findings(conn: Connection, table: str, cutoff: datetime) -> list[Finding]:
    """Every row rule of the table counted in one scan (the feed has 77 million rows at full scale), each with the
    ``ctid`` of an offending row, whose values are then fetched by that address alone."""
    rules = rules_of(table)
    columns = ", ".join(f"count(*) FILTER (WHERE {_true(r)}), min(t.ctid) FILTER (WHERE {_true(r)})" for r in rules)
    joins = FEED_JOINS if table == Table.FEED else ""
    row = conn.execute(sa.text(f"SELECT {columns} FROM {table} t{joins}"), {"cutoff": cutoff}).one()
    findings = []
    for index, rule in enumerate(rules):
        count, ctid = int(row[2 * index]), row[2 * index + 1]
        findings.append(_finding(rule, count, _row_at(conn, table, ctid)))
    return findings


def _true(rule: RowRule) -> str:
    return f"({rule.sql}) IS TRUE"


def _finding(rule: RowRule, count: int, example: dict[str, Any] | None) -> Finding:
    return Finding(rule.table, rule.column, rule.problem, rule.severity, count, example, handling=rule.handling)


def _key_finding(conn: Connection, rule: KeyRule) -> Finding:
    key = f"t.{rule.column}"
    sql = (
        f"SELECT coalesce(sum(n - 1), 0), min(k) FILTER (WHERE n > 1) FROM"
        f" (SELECT {key} AS k, count(*) AS n FROM {rule.table} t WHERE {key} IS NOT NULL GROUP BY {key}) g"
    )
    extra, duplicated = conn.execute(sa.text(sql)).one()
    example = None
    if duplicated is not None:
        example = _example(conn, f"SELECT * FROM {rule.table} t WHERE {key} = {int(duplicated)} LIMIT 1")
    return Finding(rule.table, rule.column, rule.problem, rule.severity, int(extra), example, unit="extra rows")


# One pass over the feed in (user, post, time) order, which the user index mostly provides: a row equal to the one
# before it is a duplicate; a pair whose first row is a like has a like with no view at or before it (at one
# timestamp the view sorts first). The ctid of a first offender of each serves as the example.
_PAIR_SQL = f"""
SELECT count(*) FILTER (WHERE duplicate), min(ctid) FILTER (WHERE duplicate),
       count(*) FILTER (WHERE like_first), min(ctid) FILTER (WHERE like_first)
FROM (
    SELECT t.ctid,
           (t."{Col.TIMESTAMP}", t.{Col.ACTION}, t.{Col.TARGET})
               IS NOT DISTINCT FROM lag((t."{Col.TIMESTAMP}", t.{Col.ACTION}, t.{Col.TARGET})) OVER pair AS duplicate,
           t.{Col.ACTION} = '{Action.LIKE}' AND row_number() OVER pair = 1 AS like_first
    FROM {Table.FEED} t
    WINDOW pair AS (
        PARTITION BY t.{Col.USER_ID}, t.{Col.POST_ID}
        ORDER BY t."{Col.TIMESTAMP}", t.{Col.ACTION} = '{Action.LIKE}', t.{Col.TARGET}
    )
) AS ordered
"""


def _pair_findings(conn: Connection) -> list[Finding]:
    dups, dup_ctid, orphans, orphan_ctid = conn.execute(sa.text(_PAIR_SQL)).one()
    return [
        _pair_finding(DUPLICATE_ROWS, int(dups), _row_at(conn, Table.FEED, dup_ctid)),
        _pair_finding(LIKE_WITHOUT_VIEW, int(orphans), _row_at(conn, Table.FEED, orphan_ctid)),
    ]


def _row_at(conn: Connection, table: str, ctid: object) -> dict[str, Any] | None:
    """The row at a physical address (a ``ctid`` read in the same transaction or snapshot of an idle table)."""
    return None if ctid is None else _example(conn, f"SELECT * FROM {table} t WHERE t.ctid = '{ctid}'::tid")


def _pair_finding(rule: PairRule, count: int, example: dict[str, Any] | None) -> Finding:
    return Finding(Table.FEED, rule.column, rule.problem, rule.severity, count, example, rule.unit, rule.handling)


def _example(conn: Connection, sql: str) -> dict[str, Any] | None:
    row = conn.execute(sa.text(sql)).mappings().first()
    return None if row is None else {key: _plain(value) for key, value in row.items()}


def _plain(value: object) -> object:
    return value.isoformat(sep=" ") if hasattr(value, "isoformat") else shown(value)


def shown(value: object, limit: int = 60) -> object:
    """A value as an example shows it: texts past ``limit`` characters cut, so a post's article fits on the line."""
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 3] + "..."
    return value
