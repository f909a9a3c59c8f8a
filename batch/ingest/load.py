"""``postrec load DIR``: replace the three source tables with export files, all or nothing.

One transaction empties the tables (and the synthetic world's truth, which no longer describes the data), streams
each file into its table with ``COPY FROM STDIN`` a chunk at a time, rebuilds the feed's indexes and validates the
result with the build's own rules. Each chunk is typed and checked on the way in, so a bad value or a broken row
rule is named by file, row and column; after the first refusal nothing more is copied, but every file is still read
to the end so one run names every problem. Any refusal, a lost connection or an interrupt rolls the transaction
back: the tables keep what they held before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from batch.ingest.convert import type_chunk
from batch.ingest.files import ROW, Chunk, ChunkSizes, SourceFile, find_files, read_chunks, to_csv
from batch.ingest.problems import ProblemLog
from batch.pipeline.rules import KEY_RULES, RuleContext, Severity, rules_of
from batch.pipeline.validate import ValidationReport, check_schema, validate_connection
from batch.world.store import PARAMS_TABLE, POST_TRUTH_TABLE, USER_TRUTH_TABLE
from common.columns import Table
from common.db import FEED_INDEXES, INDEX_DDL, check_connection, database_failure, init_schema, naive_utc_now
from common.errors import DataValidationError, SourceUnavailableError
from common.logs import peak_rss_mb

log = logging.getLogger(__name__)

INDEX_BUILD_MEMORY: Final = "512MB"
PROGRESS_EVERY_S: Final = 10.0
# Called after each chunk is copied with the file and the rows copied from it so far (progress, tests).
ChunkHook = Callable[[SourceFile, int], None]


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load stored.

    Attributes:
        rows: Rows per table.
        seconds: Wall time, validation and index builds included.
        validation: The build's validation of the loaded tables (its warnings).
    """

    rows: dict[str, int]
    seconds: float
    validation: ValidationReport


@dataclass
class _Loading:
    """State of one load: the transaction's COPY cursor, the problems so far, the ids the feed must refer to."""

    cursor: psycopg2.extensions.cursor
    now: datetime
    on_chunk: ChunkHook | None
    sizes: ChunkSizes
    problems: ProblemLog = field(default_factory=ProblemLog)
    ids: dict[str, pl.Series] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    current: str = ""

    def context(self) -> RuleContext:
        empty = pl.Series([], dtype=pl.Int32)
        users, posts = self.ids.get(Table.USERS, empty), self.ids.get(Table.POSTS, empty)
        return RuleContext(user_ids=users, post_ids=posts, cutoff=self.now)


def load_directory(
    engine: Engine,
    directory: Path,
    now: datetime | None = None,
    on_chunk: ChunkHook | None = None,
    sizes: ChunkSizes = ChunkSizes(),  # noqa: B008 - frozen
) -> LoadReport:
    """Replace user_data, post_text_df and feed_data with the files in ``directory``, in one transaction.

    Args:
        engine: Engine on the target database (tables are created when missing).
        directory: Holds ``user_data``, ``post_text_df`` and ``feed_data`` as ``.csv``, ``.csv.gz`` or ``.parquet``.
        now: Feed rows dated after it are counted as future rows (naive UTC); None = the clock.
        on_chunk: Called after each chunk is copied.
        sizes: How much of a file is read at once.

    Raises:
        DataValidationError: A file is missing or unreadable, a value does not fit its column, or a rule refuses;
            every problem is listed and nothing is loaded.
        SourceUnavailableError: PostgreSQL is unreachable or the connection was lost; nothing is loaded.
    """
    files = find_files(directory)
    check_connection(engine)
    init_schema(engine)
    started = time.perf_counter()
    loading: _Loading | None = None
    try:
        with engine.begin() as conn:
            loading = _Loading(_copy_cursor(conn), now or naive_utc_now(), on_chunk, sizes)
            report = _load_in(conn, loading, files)
    except Exception as exc:
        reason = database_failure(exc)
        if reason is None:
            raise
        where = f" while loading {loading.current}" if loading and loading.current else ""
        raise SourceUnavailableError(
            f"PostgreSQL connection lost{where} ({reason}): nothing was loaded, the tables keep what they held; "
            "check that PostgreSQL is running, then run `postrec load` again"
        ) from None
    seconds = time.perf_counter() - started
    log.info("loaded: %s seconds=%.1f peak_mb=%.0f", _counts(loading.rows), seconds, peak_rss_mb())
    return LoadReport(dict(loading.rows), seconds, report)


def _counts(rows: dict[str, int]) -> str:
    return " ".join(f"{table}={count}" for table, count in rows.items())


def _copy_cursor(conn: Connection) -> psycopg2.extensions.cursor:
    driver: Any = conn.connection.driver_connection
    cursor: psycopg2.extensions.cursor = driver.cursor()
    return cursor


def _load_in(conn: Connection, loading: _Loading, files: list[SourceFile]) -> ValidationReport:
    check_schema(conn)
    _empty_tables(conn)
    for source in files:
        loading.current = source.name
        _load_file(loading, source)
    loading.current = ""
    if loading.problems.refused:
        raise DataValidationError(_refusal(loading.problems))
    _rebuild_indexes(conn)
    report = validate_connection(conn, loading.now)
    report.raise_if_refused("the load (nothing was loaded)")
    report.log(log)
    return report


def _empty_tables(conn: Connection) -> None:
    conn.execute(sa.text(f"TRUNCATE {Table.USERS}, {Table.POSTS}, {Table.FEED}"))
    # A previous `postrec seed` left its world's truth: it does not describe these data, so the oracle must not use it.
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {PARAMS_TABLE}, {USER_TRUTH_TABLE}, {POST_TRUTH_TABLE}"))
    for name in FEED_INDEXES:
        conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))


def _rebuild_indexes(conn: Connection) -> None:
    started = time.perf_counter()
    conn.execute(sa.text(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"))
    for statement in INDEX_DDL:
        conn.execute(sa.text(statement))
    conn.execute(sa.text(f"ANALYZE {Table.USERS}, {Table.POSTS}, {Table.FEED}"))
    log.info("feed indexes built: seconds=%.1f", time.perf_counter() - started)


def _load_file(loading: _Loading, source: SourceFile) -> None:
    started = last = time.perf_counter()
    rows = 0
    for chunk in read_chunks(source, loading.sizes):
        rows += _load_chunk(loading, chunk)
        if loading.on_chunk is not None:
            loading.on_chunk(source, rows)
        if time.perf_counter() - last >= PROGRESS_EVERY_S:
            last = time.perf_counter()
            log.info("loading %s: rows=%d rows_per_s=%.0f", source.name, rows, rows / (last - started))
    loading.rows[source.table] = rows
    log.info("read %s: rows=%d seconds=%.1f", source.name, rows, time.perf_counter() - started)


def _load_chunk(loading: _Loading, chunk: Chunk) -> int:
    """Type and check one chunk, and copy it unless something already refuses. Returns its rows."""
    typed = type_chunk(chunk)
    name, raw = chunk.source.name, chunk.raw
    readable = pl.Series([True] * raw.height)
    for bad in typed.bad:
        loading.problems.add(name, raw, bad.mask, (bad.column, bad.problem, Severity.REFUSE, ""))
        readable &= ~bad.mask
    table = chunk.source.table
    context = loading.context()
    # A value that did not fit its type is already named; the rules judge only the rows read in full.
    for rule in rules_of(table):
        mask = typed.rows.select(rule.check(context).fill_null(False)).to_series() & readable
        loading.problems.add(name, raw, mask, (rule.column, rule.problem, rule.severity, rule.handling))
    _check_keys(loading, chunk, typed.rows)
    if not loading.problems.refused:
        columns = [column for column in typed.rows.columns if column != ROW]
        _copy(loading.cursor, table, typed.rows.select(columns))
    return raw.height


def _check_keys(loading: _Loading, chunk: Chunk, rows: pl.DataFrame) -> None:
    """Keys already seen in earlier chunks, or earlier in this one, are duplicates (and would break COPY)."""
    for rule in KEY_RULES:
        if rule.table != chunk.source.table:
            continue
        ids = rows[rule.column]
        seen = loading.ids.get(rule.table, pl.Series(rule.column, [], dtype=ids.dtype))
        duplicate = (ids.is_in(seen.implode()) | ~ids.is_first_distinct()) & ids.is_not_null()
        loading.problems.add(chunk.source.name, chunk.raw, duplicate, (rule.column, rule.problem, rule.severity, ""))
        loading.ids[rule.table] = pl.concat([seen, ids.drop_nulls()])


def _copy(cursor: psycopg2.extensions.cursor, table: str, rows: pl.DataFrame) -> None:
    columns = ", ".join(f'"{column}"' for column in rows.columns)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", to_csv(rows))


def _refusal(problems: ProblemLog) -> str:
    lines = [f"nothing was loaded, the tables keep what they held: {len(problems.refused)} problem(s) in the files"]
    lines += [f"  {problem.line()}" for problem in problems.refused]
    if problems.warned:
        lines.append("and these are only warnings:")
        lines += [f"  {problem.line()}" for problem in problems.warned]
    return "\n".join(lines)
