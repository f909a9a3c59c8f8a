"""The export files ``postrec load`` reads: where they are, how they are read in chunks, and how their text is typed.

A directory holds one file per table, named after it: ``user_data``, ``post_text_df`` and ``feed_data``, each as
``.csv``, ``.csv.gz`` or ``.parquet``. CSV files have a header row naming the columns (in any order; extra columns,
such as a pandas index, are ignored); an empty field is NULL. Files are read a chunk at a time (a block of CSV text
cut after a complete row, or a slice of Parquet rows), so the 76-million-row feed never sits in memory at once, and
each chunk's rows keep their number in the file (the first data row is row 1) for messages.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Final, cast

import polars as pl

from common.columns import Col, Table
from common.errors import DataValidationError

SUFFIXES: Final = (".csv", ".csv.gz", ".parquet")
CSV_BLOCK_BYTES: Final = 32 * 2**20
PARQUET_CHUNK_ROWS: Final = 1_000_000
ROW: Final = "_row"

INT: Final = pl.Int32()
TIME: Final = pl.Datetime("us")
# The PostgreSQL column types of `postrec db init`, as polars types.
LOAD_SCHEMAS: Final[Mapping[str, Mapping[str, pl.DataType]]] = {
    Table.USERS: {
        Col.USER_ID: INT,
        Col.AGE: INT,
        Col.CITY: pl.String(),
        Col.COUNTRY: pl.String(),
        Col.EXP_GROUP: INT,
        Col.GENDER: INT,
        Col.OS: pl.String(),
        Col.SOURCE: pl.String(),
    },
    Table.POSTS: {Col.POST_ID: INT, Col.TEXT: pl.String(), Col.TOPIC: pl.String()},
    Table.FEED: {Col.TIMESTAMP: TIME, Col.USER_ID: INT, Col.POST_ID: INT, Col.ACTION: pl.String(), Col.TARGET: INT},
}
# Timestamps as exports write them: ISO 8601 with a space or a T, fractional seconds optional, or a date alone. The
# first is tried on every value (the common form, and three times faster to parse than with "%.f"); the others only
# on the values it could not read.
TIME_FORMATS: Final = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One table's export file."""

    table: str
    path: Path

    @property
    def name(self) -> str:
        """The file name, as messages show it."""
        return self.path.name

    @property
    def is_parquet(self) -> bool:
        """Parquet, else CSV (plain or gzip)."""
        return self.path.name.endswith(".parquet")


@dataclass(frozen=True, slots=True)
class ChunkSizes:
    """How much of a file is read at once: bounds the load's memory (about 10x a CSV block in typed rows)."""

    csv_bytes: int = CSV_BLOCK_BYTES
    parquet_rows: int = PARQUET_CHUNK_ROWS


@dataclass(frozen=True, slots=True)
class Chunk:
    """Rows of a file as read: every column as the file has it, plus :data:`ROW`, the row number in the file."""

    source: SourceFile
    raw: pl.DataFrame


def find_files(directory: Path) -> list[SourceFile]:
    """The three tables' files in ``directory``, users and posts first (the feed is checked against them).

    Raises:
        DataValidationError: The directory is missing, or a table has no file or more than one.
    """
    if not directory.is_dir():
        raise DataValidationError(f"{directory} is not a directory: give the folder holding the export files")
    found = [_find_one(directory, table) for table in (Table.USERS, Table.POSTS, Table.FEED)]
    return found


def _find_one(directory: Path, table: str) -> SourceFile:
    candidates = [directory / f"{table}{suffix}" for suffix in SUFFIXES if (directory / f"{table}{suffix}").is_file()]
    names = " or ".join(f"{table}{suffix}" for suffix in SUFFIXES)
    if not candidates:
        raise DataValidationError(f"{directory} has no {names}: every table needs one file")
    if len(candidates) > 1:
        listed = ", ".join(path.name for path in candidates)
        raise DataValidationError(f"{directory} has {listed}: keep one file per table")
    return SourceFile(table, candidates[0])


def read_chunks(source: SourceFile, sizes: ChunkSizes = ChunkSizes()) -> Iterator[Chunk]:
    """The file's rows, a chunk at a time, each with its rows' numbers.

    Raises:
        DataValidationError: The file cannot be read, or lacks one of its table's columns.
    """
    try:
        if source.is_parquet:
            yield from _parquet_chunks(source, sizes.parquet_rows)
        else:
            yield from _csv_chunks(source, sizes.csv_bytes)
    except (OSError, pl.exceptions.PolarsError, csv.Error, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{source.name}: cannot be read as {_kind(source)}: {_first_line(exc)}") from None


def _kind(source: SourceFile) -> str:
    return "Parquet" if source.is_parquet else "CSV with a header row"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _parquet_chunks(source: SourceFile, rows: int) -> Iterator[Chunk]:
    scan = pl.scan_parquet(source.path)
    columns = _required_columns(source, scan.collect_schema().names())
    total = scan.select(pl.len()).collect().item()
    # A slice reads only the row groups it covers, so each chunk costs its own rows, not the file's.
    for offset in range(0, total, rows):
        frame = scan.select(columns).slice(offset, rows).collect()
        yield Chunk(source, _numbered(frame, offset))


def _numbered(frame: pl.DataFrame, offset: int) -> pl.DataFrame:
    return frame.with_row_index(ROW, offset=offset + 1)


def _required_columns(source: SourceFile, present: list[str]) -> list[str]:
    wanted = list(LOAD_SCHEMAS[source.table])
    missing = [column for column in wanted if column not in present]
    if missing:
        raise DataValidationError(
            f"{source.name}: missing column(s) {', '.join(missing)} (the file has {', '.join(present) or 'none'})"
        )
    return wanted


def _open(source: SourceFile) -> BinaryIO:
    if source.path.name.endswith(".gz"):
        return cast(BinaryIO, gzip.GzipFile(source.path, "rb"))
    return source.path.open("rb")


def _csv_chunks(source: SourceFile, block_bytes: int) -> Iterator[Chunk]:
    with _open(source) as stream:
        header = _header(source, stream.readline())
        columns = _required_columns(source, header)
        offset = 0
        for block in _row_blocks(stream, block_bytes):
            frame = _parse_block(block, header).select(columns)
            yield Chunk(source, _numbered(frame, offset))
            offset += frame.height


def _header(source: SourceFile, line: bytes) -> list[str]:
    if not line.strip():
        raise DataValidationError(f"{source.name}: empty file; the first line must name the columns")
    return [name.strip() for name in next(csv.reader([line.decode("utf-8-sig")]))]


def _parse_block(block: bytes, header: list[str]) -> pl.DataFrame:
    # Every column is read as text, so a bad value becomes a message naming its row and column, not a parse failure.
    names = [name or f"_unnamed_{index}" for index, name in enumerate(header)]
    schema = dict.fromkeys(names, pl.String())
    return pl.read_csv(block, has_header=False, new_columns=names, schema=schema)


def _row_blocks(stream: IO[bytes], block_bytes: int) -> Iterator[bytes]:
    """Blocks of about ``block_bytes`` that end after a complete row (a newline outside quotes)."""
    pending = b""
    while data := stream.read(block_bytes):
        pending += data
        cut = complete_rows(pending)
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending.strip():
        yield pending


def complete_rows(text: bytes) -> int:
    """Length of the longest prefix of ``text`` that ends with a newline outside quotes; 0 when there is none.

    CSV escapes a quote inside a quoted field by doubling it, so a newline is outside quotes exactly when the quotes
    before it are even in number.
    """
    cut = text.rfind(b"\n") + 1
    quotes = text.count(b'"', 0, cut)
    while cut and quotes % 2:
        previous = text.rfind(b"\n", 0, cut - 1) + 1
        quotes -= text.count(b'"', previous, cut)
        cut = previous
    return cut


def to_csv(frame: pl.DataFrame) -> io.BytesIO:
    """Typed rows as headerless CSV for ``COPY ... FROM STDIN (FORMAT csv)``: NULL is an empty field, an empty text
    is ``""``, timestamps keep their microseconds."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.6f")
    buffer.seek(0)
    return buffer
