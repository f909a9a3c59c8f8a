"""``postrec load DIR`` against a real PostgreSQL database: exports of a seeded world load back exactly, from CSV,
gzip CSV and Parquet; bad files, a dead connection or an interrupt load nothing and name the file, row and column."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.ingest.files import ChunkSizes, SourceFile
from batch.ingest.load import load_directory
from batch.world.seed import seed_database
from common.errors import DataValidationError, SourceUnavailableError
from postrec.cli import main

TABLES = ("user_data", "post_text_df", "feed_data")
SMALL_CHUNKS = ChunkSizes(csv_bytes=64 * 1024, parquet_rows=5_000)


def fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Rows and an order-independent digest of each table (and whether the world's truth is still there)."""
    prints = {}
    with engine.connect() as conn:
        for table in TABLES:
            sql = f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            count, digest = conn.execute(sa.text(sql)).one()
            prints[table] = (int(count), str(digest))
        prints["truth"] = (int(sa.inspect(conn).has_table("world_params")), "")
    return prints


def export_csv(engine: Engine, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for table in TABLES:
                with (directory / f"{table}.csv").open("wb") as file:
                    cursor.copy_expert(f"COPY {table} TO STDOUT WITH (FORMAT csv, HEADER)", file)
    finally:
        raw.close()
    return directory


def to_parquet(csv_dir: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        frame = pl.read_csv(csv_dir / f"{table}.csv", try_parse_dates=True)
        frame.write_parquet(directory / f"{table}.parquet", row_group_size=4_000)
    return directory


def to_gzip(csv_dir: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        with (csv_dir / f"{table}.csv").open("rb") as plain, gzip.open(directory / f"{table}.csv.gz", "wb") as packed:
            shutil.copyfileobj(plain, packed)
    return directory


@pytest.fixture
def world(engine: Engine) -> Engine:
    seed_database(engine, "tiny", 42)
    return engine


@pytest.fixture
def exported(world: Engine, tmp_path: Path) -> Path:
    return export_csv(world, tmp_path / "csv")


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)


@pytest.mark.parametrize("form", ["csv", "csv.gz", "parquet"])
def test_an_exported_world_loads_back_exactly(world: Engine, exported: Path, tmp_path: Path, form: str) -> None:
    seeded = fingerprint(world)
    directory = {"csv": exported, "csv.gz": to_gzip(exported, tmp_path / "gz"), "parquet": None}[form]
    if directory is None:
        directory = to_parquet(exported, tmp_path / "parquet")
    with world.begin() as conn:
        conn.execute(sa.text("DELETE FROM feed_data WHERE action = 'like'"))
        conn.execute(sa.text("UPDATE user_data SET age = 99"))

    report = load_directory(world, directory, sizes=SMALL_CHUNKS)

    loaded = fingerprint(world)
    assert {table: loaded[table] for table in TABLES} == {table: seeded[table] for table in TABLES}
    assert report.rows == {table: seeded[table][0] for table in TABLES}
    assert loaded["truth"] == (0, ""), "the seeded world's truth no longer describes the data"
    with world.connect() as conn:
        indexes = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'feed_data'")).scalars())
    assert {"feed_data_timestamp_idx", "feed_data_user_idx", "feed_data_like_ts_idx"} <= indexes


def test_like_target_null_or_zero_extra_columns_and_any_column_order_are_accepted(engine: Engine, tmp_path) -> None:
    write(
        tmp_path,
        "user_data.csv",
        ",source,os,gender,exp_group,country,city,age,user_id\n0,ads,iOS,1,2,Russia,Moscow,20.0,200\n",
    )
    write(tmp_path, "post_text_df.csv", 'post_id,text,topic\n1,"a, ""quoted""\ntext",movie\n2,"",covid\n')
    write(
        tmp_path,
        "feed_data.csv",
        "timestamp,user_id,post_id,action,target\n"
        "2021-10-01 06:00:00,200,1,view,1\n"
        "2021-10-01T06:01:30.5,200,1,like,\n"
        "2021-10-01 06:02:00,200,2,view,0\n"
        "2021-10-01 06:03:00,200,2,like,0\n",
    )

    load_directory(engine, tmp_path)

    with engine.connect() as conn:
        user = conn.execute(sa.text("SELECT user_id, age, city, source FROM user_data")).one()
        posts = conn.execute(sa.text("SELECT post_id, text FROM post_text_df ORDER BY post_id")).all()
        likes = conn.execute(sa.text("SELECT \"timestamp\"::text, target FROM feed_data WHERE action = 'like'")).all()
    assert tuple(user) == (200, 20, "Moscow", "ads")
    assert [tuple(row) for row in posts] == [(1, 'a, "quoted"\ntext'), (2, "")]
    assert sorted(tuple(row) for row in likes) == [("2021-10-01 06:01:30.5", None), ("2021-10-01 06:03:00", 0)]


BAD_FEED = (
    "timestamp,user_id,post_id,action,target\n"
    "2021-10-01 06:00:00,200,1,view,1\n"
    "2021-10-01 06:01:00,200,1,like,\n"
    "2021-10-01 06:02:00,200,2,share,0\n"
    "2021-10-01 06:03:00,999,2,view,0\n"
    "2021-13-01 06:03:00,200,2,view,0\n"
    "2021-10-01 06:04:00,200,2,view,seven\n"
    "2099-01-01 00:00:00,200,1,like,\n"
)


def bad_dir(directory: Path) -> Path:
    write(directory, "user_data.csv", "user_id,age,city,country,exp_group,gender,os,source\n200,-5,a,b,1,1,iOS,ads\n")
    write(directory, "post_text_df.csv", "post_id,text,topic\n1,x,movie\n2,,covid\n1,y,tech\n")
    write(directory, "feed_data.csv", BAD_FEED)
    return directory


def test_bad_files_load_nothing_and_name_file_row_and_column(world: Engine, tmp_path: Path) -> None:
    before = fingerprint(world)

    with pytest.raises(DataValidationError) as caught:
        load_directory(world, bad_dir(tmp_path / "bad"))

    lines = [line.strip() for line in str(caught.value).splitlines()]
    assert lines[0] == "nothing was loaded, the tables keep what they held: 5 problem(s) in the files"
    assert lines[1].startswith("post_text_df.csv row 3 column post_id: duplicate key (1 row; first row {'post_id': '1'")
    assert lines[2].startswith("feed_data.csv row 3 column action: unknown action (expected view or like)")
    assert lines[3].startswith("feed_data.csv row 4 column user_id: user missing from user_data")
    assert lines[4].startswith("feed_data.csv row 5 column timestamp: not a timestamp")
    assert lines[5].startswith("feed_data.csv row 6 column target: not an integer")
    assert lines[6] == "and these are only warnings:"
    assert lines[7].startswith("user_data.csv row 1 column age: impossible age")
    assert lines[8].startswith("post_text_df.csv row 2 column text: NULL text")
    assert lines[9].startswith("feed_data.csv row 7 column timestamp: dated at or after the cutoff")
    assert fingerprint(world) == before


def test_missing_or_doubled_files_are_named(engine: Engine, tmp_path: Path) -> None:
    bad_dir(tmp_path)
    (tmp_path / "feed_data.csv").unlink()
    with pytest.raises(DataValidationError, match=r"has no feed_data\.csv or feed_data\.csv\.gz or feed_data\.parquet"):
        load_directory(engine, tmp_path)
    write(tmp_path, "feed_data.csv", BAD_FEED)
    write(tmp_path, "feed_data.parquet", "")
    with pytest.raises(DataValidationError, match=r"has feed_data\.csv, feed_data\.parquet: keep one file per table"):
        load_directory(engine, tmp_path)
    (tmp_path / "feed_data.parquet").unlink()
    write(tmp_path, "user_data.csv", "user_id,age\n200,20\n")
    with pytest.raises(DataValidationError, match=r"user_data\.csv: missing column\(s\) city, country, exp_group"):
        load_directory(engine, tmp_path)


def test_postgresql_dying_mid_copy_loads_nothing(world: Engine, exported: Path, base_settings) -> None:
    before = fingerprint(world)
    database = world.url.database

    def terminate_after_first_feed_chunk(source: SourceFile, rows: int) -> None:
        if source.table == "feed_data":
            admin = sa.create_engine(world.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                    {"db": database},
                )
            admin.dispose()

    with pytest.raises(SourceUnavailableError) as caught:
        load_directory(world, exported, on_chunk=terminate_after_first_feed_chunk, sizes=SMALL_CHUNKS)

    message = str(caught.value)
    assert message.startswith("PostgreSQL connection lost while loading feed_data.csv (")
    assert "terminating connection" in message or "server closed the connection" in message
    assert "nothing was loaded, the tables keep what they held" in message
    world.dispose()
    assert fingerprint(world) == before


def test_an_interrupt_loads_nothing(world: Engine, exported: Path) -> None:
    before = fingerprint(world)

    def interrupt(source: SourceFile, rows: int) -> None:
        if source.table == "feed_data":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_directory(world, exported, on_chunk=interrupt, sizes=SMALL_CHUNKS)
    assert fingerprint(world) == before


def test_the_command_prints_the_problems_without_a_traceback(database_url, tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.setenv("POSTREC_DATABASE_URL", database_url)
    monkeypatch.setenv("POSTREC_DATA_DIR", str(tmp_path / "data"))

    code = main(["load", str(bad_dir(tmp_path / "bad"))])

    err = capfd.readouterr().err
    assert code == 2
    assert "feed_data.csv row 3 column action: unknown action" in err
    assert "Traceback" not in err
