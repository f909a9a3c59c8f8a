"""Typing a chunk of an export file: each column becomes its PostgreSQL type, and every value that does not fit is
marked, so the load can name its row and column instead of failing inside COPY.

An empty text is NULL, and so is NaN. Integers may be written as integral floats (``20.0``: pandas writes an integer
column with a missing value that way). Parquet columns already typed pass through when they fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import polars as pl

from batch.ingest.files import INT32_MAX, INT32_MIN, LOAD_SCHEMAS, ROW, TIME_FORMATS, Chunk

NOT_INT: Final = f"not an integer in {INT32_MIN}..{INT32_MAX}"
NOT_TIME: Final = "not a timestamp (expected YYYY-MM-DD HH:MM:SS, fractional seconds optional, naive UTC)"


@dataclass(frozen=True, slots=True)
class BadValues:
    """The rows of one column whose values do not fit its type.

    Attributes:
        column: The column.
        problem: What the values are not.
        mask: True on the bad rows of the chunk.
    """

    column: str
    problem: str
    mask: pl.Series


@dataclass(frozen=True, slots=True)
class TypedChunk:
    """A chunk as the table's types: the bad values are NULL here and listed in ``bad``."""

    rows: pl.DataFrame
    bad: tuple[BadValues, ...]


def type_chunk(chunk: Chunk) -> TypedChunk:
    """Convert every column of the chunk to its table's type (see :data:`batch.ingest.files.LOAD_SCHEMAS`)."""
    schema: Mapping[str, pl.DataType] = LOAD_SCHEMAS[chunk.source.table]
    typed: dict[str, pl.Series] = {ROW: chunk.raw[ROW]}
    bad: list[BadValues] = []
    for column, dtype in schema.items():
        values, problem = _convert(chunk.raw[column], dtype)
        typed[column] = values
        mask = _bad(chunk.raw[column], values)
        if problem and mask.any():
            bad.append(BadValues(column, problem, mask))
    return TypedChunk(pl.DataFrame(typed), tuple(bad))


def _convert(raw: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, str]:
    if dtype == pl.String():
        return raw.cast(pl.String), ""
    if isinstance(dtype, pl.Datetime):
        return to_timestamps(raw), NOT_TIME
    return to_int32(raw), NOT_INT


def _bad(raw: pl.Series, typed: pl.Series) -> pl.Series:
    present = raw.is_not_null()
    if raw.dtype == pl.String:
        present &= raw.str.strip_chars() != ""
    elif raw.dtype.is_float():
        # pandas writes a missing integer (a like's target) as NaN in a float column: that is a NULL, not a bad value.
        present &= ~raw.is_nan()
    return (present & typed.is_null()).fill_null(False)


def to_int32(raw: pl.Series) -> pl.Series:
    """Integers in int32 range; anything else (text, fractions, overflow) NULL."""
    if raw.dtype == pl.String:
        text = raw.str.strip_chars()
        return _retry_failures(text.cast(pl.Int32, strict=False), text, _integral)
    if raw.dtype.is_float():
        return _integral(raw)
    if raw.dtype.is_integer() or raw.dtype == pl.Boolean:
        return raw.cast(pl.Int32, strict=False)
    return pl.Series(raw.name, [None] * raw.len(), pl.Int32)


def _integral(values: pl.Series) -> pl.Series:
    """Whole numbers written as floats (``20.0``, ``1e3``) as int32; fractions, NaN and overflow NULL."""
    numbers = values.cast(pl.Float64, strict=False)
    whole = numbers.to_frame().select(pl.when(pl.first() == pl.first().floor()).then(pl.first())).to_series()
    return whole.cast(pl.Int32, strict=False).alias(values.name)


def _retry_failures(values: pl.Series, text: pl.Series, parse: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``values`` with the entries that failed to parse (NULL, from a non-empty text) parsed again by ``parse``.

    The slower readings (floats, other timestamp formats) then run on the few odd values only, not on every row.
    """
    failed = values.is_null() & text.is_not_null() & (text != "")
    if not failed.any():
        return values
    at = failed.arg_true()
    return values.scatter(at, parse(text.gather(at)))


def to_timestamps(raw: pl.Series) -> pl.Series:
    """Naive microsecond timestamps: text in one of :data:`TIME_FORMATS`, dates, or datetimes (aware ones in UTC)."""
    if isinstance(raw.dtype, pl.Datetime):
        if raw.dtype.time_zone is not None:
            raw = raw.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return raw.cast(pl.Datetime("us"))
    if raw.dtype == pl.Date:
        return raw.cast(pl.Datetime("us"))
    if raw.dtype != pl.String:
        return pl.Series(raw.name, [None] * raw.len(), pl.Datetime("us"))
    text = raw.str.strip_chars()
    values = _parse_time(text, TIME_FORMATS[0])
    for fmt in TIME_FORMATS[1:]:
        values = _retry_failures(values, text, lambda part, fmt=fmt: _parse_time(part, fmt))  # type: ignore[misc]
    return values


def _parse_time(text: pl.Series, fmt: str) -> pl.Series:
    return text.str.to_datetime(fmt, time_unit="us", strict=False)
