"""Rows per second and peak RSS of ``postrec load``, from CSV and from Parquet exports of a seeded world.

    .venv/bin/python bench/load.py --scale small --runs 3
    .venv/bin/python bench/load.py --scale medium --runs 1 --formats csv,parquet

Seeds ``postrec_bench_load_src_<scale>`` next to POSTREC_DATABASE_URL's database (kept for the next run with
``--keep``), exports its three tables under ``POSTREC_DATA_DIR/bench_load/<scale>/`` (CSV with a header through
``COPY TO``, then Parquet converted from it by a streaming polars sink), and loads each format into
``postrec_bench_load_dst_<scale>`` with ``postrec load`` in a child process, whose own peak RSS is read from
``wait4``. Prints, per format, the median seconds over ``--runs`` (load, index build and validation included), rows
per second over all three tables, and the highest peak RSS. The destination database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from batch.world.seed import seed_database
from common.db import ensure_database, init_schema, make_engine, sqlalchemy_url
from common.settings import load_settings

TABLES = ("user_data", "post_text_df", "feed_data")


def database_url(name: str) -> str:
    return sqlalchemy_url(load_settings().database_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = sqlalchemy_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def source_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return sum(int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0) for table in TABLES)


def export(engine: sa.Engine, directory: Path) -> tuple[Path, Path]:
    csv_dir, parquet_dir = directory / "csv", directory / "parquet"
    for folder in (csv_dir, parquet_dir):
        folder.mkdir(parents=True, exist_ok=True)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for table in TABLES:
                with (csv_dir / f"{table}.csv").open("wb") as file:
                    cursor.copy_expert(f"COPY {table} TO STDOUT WITH (FORMAT csv, HEADER)", file)
    finally:
        raw.close()
    for table in TABLES:
        scan = pl.scan_csv(csv_dir / f"{table}.csv", try_parse_dates=True, infer_schema_length=10_000)
        scan.sink_parquet(parquet_dir / f"{table}.parquet", row_group_size=200_000)
    return csv_dir, parquet_dir


def load_once(directory: Path, target_url: str) -> tuple[float, float, int]:
    """Seconds, peak RSS (MiB) and exit status of ``postrec load`` in a child process."""
    env = {**os.environ, "POSTREC_DATABASE_URL": target_url, "POSTREC_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "postrec", "load", str(directory)], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, child.returncode


def folder_mb(directory: Path) -> float:
    return sum(path.stat().st_size for path in directory.iterdir()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=("tiny", "small", "medium", "full"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--formats", default="csv,parquet", help="comma-separated: csv, parquet")
    parser.add_argument("--keep", action="store_true", help="keep the seeded source database and the exports")
    args = parser.parse_args()

    source_url = database_url(f"postrec_bench_load_src_{args.scale}")
    target_url = database_url(f"postrec_bench_load_dst_{args.scale}")
    ensure_database(source_url)
    ensure_database(target_url)
    engine = make_engine(source_url)
    init_schema(engine)
    if not source_rows(engine):
        seed_database(engine, args.scale, args.seed)
    rows = source_rows(engine)
    folder = load_settings().data_dir / "bench_load" / args.scale
    started = time.perf_counter()
    exports = dict(zip(("csv", "parquet"), export(engine, folder), strict=True))
    engine.dispose()
    print(f"scale={args.scale} rows={rows:,} (3 tables) exported in {time.perf_counter() - started:.1f} s")

    failed = False
    try:
        for form in args.formats.split(","):
            runs = [load_once(exports[form], target_url) for _ in range(args.runs)]
            failed |= any(code != 0 for _, _, code in runs)
            seconds = statistics.median(s for s, _, _ in runs)
            print(
                f"{form:8s} {folder_mb(exports[form]):8.1f} MiB  {seconds:7.1f} s median of {args.runs} "
                f"({', '.join(f'{s:.1f}' for s, _, _ in runs)})  {rows / seconds:10,.0f} rows/s  "
                f"peak RSS {max(r for _, r, _ in runs):,.0f} MiB"
            )
    finally:
        drop_database(target_url)
        if not args.keep:
            drop_database(source_url)
            shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
