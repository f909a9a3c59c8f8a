"""Rows per second of ``postrec seed`` (generate + COPY into PostgreSQL) and of extracting it back, and peak RSS.

    .venv/bin/python bench/seed_load.py --scale small --runs 3

Seeds a throw-away database next to POSTREC_DATABASE_URL's (``postrec_bench_seed_<scale>``), then reads it back
with ``batch.pipeline.extract`` (users, posts, the whole feed into polars), and drops the database unless ``--keep``.
Prints the median over ``--runs`` and the process's peak RSS after the seeds and after the extracts.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import time

import sqlalchemy as sa

from batch.pipeline.extract import load_feed, load_posts, load_users
from batch.world.seed import seed_database
from common.db import ensure_database, make_engine, sqlalchemy_url
from common.settings import load_settings


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_once(engine: sa.Engine, scale: str, seed: int) -> tuple[int, float]:
    started = time.perf_counter()
    report = seed_database(engine, scale, seed)
    return report.feed_rows, time.perf_counter() - started


def extract_once(engine: sa.Engine) -> tuple[int, float]:
    started = time.perf_counter()
    rows = load_users(engine).height + load_posts(engine).height
    feed = load_feed(engine)
    rows += feed.height
    del feed
    return rows, time.perf_counter() - started


def drop_database(database_url: str) -> None:
    url = sqlalchemy_url(database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=("tiny", "small", "medium", "full"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--verbose", action="store_true", help="show the seed's progress log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    base = sqlalchemy_url(load_settings().database_url)
    database_url = base.set(database=f"postrec_bench_seed_{args.scale}").render_as_string(hide_password=False)
    ensure_database(database_url)
    engine = make_engine(database_url)
    try:
        seeds = [seed_once(engine, args.scale, args.seed) for _ in range(args.runs)]
        seed_peak = peak_rss_mb()
        extracts = [extract_once(engine) for _ in range(args.runs)]
        extract_peak = peak_rss_mb()
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(database_url)

    seed_seconds = statistics.median(s for _, s in seeds)
    extract_seconds = statistics.median(s for _, s in extracts)
    print(f"scale={args.scale} runs={args.runs} feed_rows={seeds[0][0]:,}")
    print(f"generate+load: {seed_seconds:.1f} s median, {seeds[0][0] / seed_seconds:,.0f} feed rows/s")
    print(
        f"extract (batch.pipeline.extract users+posts+feed): {extract_seconds:.1f} s median, "
        f"{extracts[0][0] / extract_seconds:,.0f} rows/s"
    )
    print(f"peak RSS: {seed_peak:,.0f} MiB after seeding, {extract_peak:,.0f} MiB after extracting")


if __name__ == "__main__":
    main()
