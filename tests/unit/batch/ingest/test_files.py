"""Reading export files in chunks: rows are cut only outside quotes, keep their numbers across chunks, and CSV, gzip
CSV and Parquet give the same rows."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from batch.ingest.convert import NOT_INT, NOT_TIME, to_int32, to_timestamps, type_chunk
from batch.ingest.files import ROW, ChunkSizes, SourceFile, complete_rows, find_files, read_chunks
from common.errors import DataValidationError

POSTS_CSV = 'post_id,text,topic\n1,"one, ""two""\nthree",movie\n2,,covid\n3,"x\n\ny",tech\n4,plain,sport\n'


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        (b"a,b\nc,d\n", 8),
        (b"a,b\nc,d", 4),
        (b'a,"b\nc",d\ne', 10),
        (b'a,"b\nc', 0),
        (b'a,"b ""q""\nc"\nd', 14),
        (b"no newline", 0),
    ],
)
def test_complete_rows_end_at_a_newline_outside_quotes(text: bytes, cut: int) -> None:
    assert complete_rows(text) == cut


@pytest.mark.parametrize("block", [1, 7, 16, 1 << 20])
def test_csv_chunks_keep_rows_and_numbers_whatever_the_block_size(tmp_path: Path, block: int) -> None:
    (tmp_path / "post_text_df.csv").write_text(POSTS_CSV)
    source = SourceFile("post_text_df", tmp_path / "post_text_df.csv")

    frames = [chunk.raw for chunk in read_chunks(source, ChunkSizes(csv_bytes=block))]

    rows = pl.concat(frames)
    assert rows[ROW].to_list() == [1, 2, 3, 4]
    assert rows["text"].to_list() == ['one, "two"\nthree', None, "x\n\ny", "plain"]
    assert rows["topic"].to_list() == ["movie", "covid", "tech", "sport"]


def test_gzip_and_parquet_read_like_csv(tmp_path: Path) -> None:
    (tmp_path / "post_text_df.csv").write_text(POSTS_CSV)
    with gzip.open(tmp_path / "gz.csv.gz", "wt") as packed:
        packed.write(POSTS_CSV)
    pl.read_csv(tmp_path / "post_text_df.csv").write_parquet(tmp_path / "p.parquet", row_group_size=2)
    sources = [SourceFile("post_text_df", tmp_path / name) for name in ("post_text_df.csv", "gz.csv.gz", "p.parquet")]

    read = [pl.concat(c.raw for c in read_chunks(s, ChunkSizes(csv_bytes=8, parquet_rows=3))) for s in sources]

    for frame in read[1:]:
        assert frame.cast(pl.String).equals(read[0].cast(pl.String))


def test_find_files_wants_exactly_one_file_per_table(tmp_path: Path) -> None:
    for name in ("user_data.csv", "post_text_df.parquet", "feed_data.csv.gz"):
        (tmp_path / name).write_text("")
    assert [f.path.name for f in find_files(tmp_path)] == ["user_data.csv", "post_text_df.parquet", "feed_data.csv.gz"]
    (tmp_path / "user_data.parquet").write_text("")
    with pytest.raises(DataValidationError, match=r"user_data\.csv, user_data\.parquet: keep one file per table"):
        find_files(tmp_path)
    with pytest.raises(DataValidationError, match="is not a directory"):
        find_files(tmp_path / "nowhere")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "feed_data.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match=r"^feed_data\.parquet: cannot be read as Parquet"):
        list(read_chunks(SourceFile("feed_data", tmp_path / "feed_data.parquet")))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (pl.Series(["1", " 2 ", "3.0", "1e3", "-5"]), [1, 2, 3, 1000, -5]),
        (pl.Series(["1.5", "x", "", None, "99999999999"]), [None, None, None, None, None]),
        (pl.Series([1.0, 1.5, None, float("nan"), float("inf")]), [1, None, None, None, None]),
        (pl.Series([1, 2**40, None]), [1, None, None]),
    ],
)
def test_integers_are_whole_numbers_in_int32_range(raw: pl.Series, expected: list[int | None]) -> None:
    assert to_int32(raw.alias("v")).to_list() == expected


def test_timestamps_in_the_accepted_forms() -> None:
    raw = pl.Series("t", ["2021-10-01 06:01:40", "2021-10-01T06:01:40.25", "2021-10-01 06:01", "2021-10-01", "x"])
    assert to_timestamps(raw).to_list() == [
        datetime(2021, 10, 1, 6, 1, 40),
        datetime(2021, 10, 1, 6, 1, 40, 250000),
        datetime(2021, 10, 1, 6, 1),
        datetime(2021, 10, 1),
        None,
    ]
    aware = pl.Series("t", [datetime(2021, 10, 1, 9, 0)]).dt.replace_time_zone("Europe/Moscow")
    assert to_timestamps(aware).to_list() == [datetime(2021, 10, 1, 6, 0)]


def test_a_chunk_names_its_bad_values_by_column(tmp_path: Path) -> None:
    text = "timestamp,user_id,post_id,action,target\n2021-10-01 06:00:00,200,1,view,1\n2021-13-01,2x,1,view,\n"
    (tmp_path / "feed_data.csv").write_text(text)
    chunk = next(read_chunks(SourceFile("feed_data", tmp_path / "feed_data.csv")))

    typed = type_chunk(chunk)

    assert [(bad.column, bad.problem, bad.mask.to_list()) for bad in typed.bad] == [
        ("timestamp", NOT_TIME, [False, True]),
        ("user_id", NOT_INT, [False, True]),
    ]
    assert typed.rows["target"].to_list() == [1, None]


def test_nan_in_a_parquet_float_column_is_null_not_a_bad_value(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "timestamp": [datetime(2021, 10, 1, 6), datetime(2021, 10, 1, 7), datetime(2021, 10, 1, 8)],
            "user_id": [200, 200, 200],
            "post_id": [1, 1, 2],
            "action": ["view", "like", "view"],
            "target": [1.0, float("nan"), 0.5],
        }
    )
    frame.write_parquet(tmp_path / "feed_data.parquet")
    chunk = next(read_chunks(SourceFile("feed_data", tmp_path / "feed_data.parquet")))

    typed = type_chunk(chunk)

    assert typed.rows["target"].to_list() == [1, None, None]
    assert [(bad.column, bad.mask.to_list()) for bad in typed.bad] == [("target", [False, False, True])]
