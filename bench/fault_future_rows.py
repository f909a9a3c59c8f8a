"""Fault probe: a like dated 2099 in the feed. Seeds a tiny world in a throw-away database, inserts the like, runs a
likes sync, adds a like dated after the sync's watermark and syncs again, then runs a build; prints what happened
and the seconds taken.

    .venv/bin/python bench/fault_future_rows.py

Before the fix, the sync's watermark jumped to 2099 (every later like silently never synced) and the build crashed
with "the label window holds a single class". Exits 0 when the later like synced and the build published with the
future row ignored, 1 otherwise. Uses its own database (``postrec_fault_future_<pid>``) and key prefix, both
removed afterwards.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from dataclasses import replace
from datetime import datetime, timedelta

import redis
import sqlalchemy as sa

from batch.pipeline.build import run_build
from batch.pipeline.options import BuildOptions, TrainParams
from batch.world.seed import seed_database
from common.db import ensure_database, make_engine, naive_utc_now, sqlalchemy_url
from common.keys import KeyLayout
from common.redis_clients import Role, redis_client
from common.settings import Settings, load_settings
from worker.likes import read_watermark, sync_likes

FUTURE = datetime(2099, 1, 1)


def insert_like(engine: sa.Engine, moment: datetime, user_id: int, post_id: int) -> None:
    with engine.begin() as conn:
        values = {"t": moment, "u": user_id, "p": post_id}
        conn.execute(sa.text("INSERT INTO feed_data VALUES (:t, :u, :p, 'like', NULL)"), values)


def unliked_pair(engine: sa.Engine) -> tuple[int, int]:
    """A user and a post that user has not liked, for the like dated now."""
    sql = (
        "SELECT u.user_id, p.post_id FROM user_data u CROSS JOIN post_text_df p WHERE NOT EXISTS ("
        " SELECT 1 FROM feed_data f WHERE f.user_id = u.user_id AND f.post_id = p.post_id AND f.action = 'like')"
        " ORDER BY u.user_id, p.post_id LIMIT 1"
    )
    with engine.connect() as conn:
        user_id, post_id = conn.execute(sa.text(sql)).one()
    return int(user_id), int(post_id)


def drop(settings: Settings, client: redis.Redis) -> None:
    for key in client.scan_iter(match=f"{settings.prefix}:*", count=1000):
        client.delete(key)
    url = sqlalchemy_url(settings.database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def probe(settings: Settings, engine: sa.Engine, client: redis.Redis) -> bool:
    keys, seconds = KeyLayout(settings.prefix), {}
    started = time.perf_counter()
    seed_database(engine, "tiny", 42)
    seconds["seed"] = time.perf_counter() - started

    insert_like(engine, FUTURE, 201, 1)
    mark = time.perf_counter()
    first = sync_likes(engine, client, keys)
    user_id, post_id = unliked_pair(engine)
    later = first.watermark + timedelta(minutes=1) if first.watermark else naive_utc_now()
    insert_like(engine, later, user_id, post_id)
    second = sync_likes(engine, client, keys)
    later_synced = client.sismember(keys.liked(user_id), post_id)
    seconds["likes sync x2"] = time.perf_counter() - mark
    watermark = read_watermark(client, keys)

    mark = time.perf_counter()
    # A 20-tree model on a tiny world need not beat the baselines: the probe is about the rows, not the model.
    params = TrainParams(iterations=20, depth=4, max_eval_users=100, threads=1)
    options = BuildOptions(k=30, params=params, allow_worse=True)
    built = run_build(settings, engine, options)
    source = built.prepared.source
    seconds["build"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started

    future_ok = watermark is not None and watermark < FUTURE
    print(f"future-dated like: {FUTURE} (user 201, post 1)")
    print(f"likes sync: rows {first.rows} then {second.rows}; watermark {watermark} (before 2099: {future_ok})")
    print(f"later like (user {user_id}, post {post_id}, dated {later}) synced: {bool(later_synced)}")
    print(f"build: version {built.version} published, as_of {source.as_of}, rows ignored {source.ignored_rows}")
    print("seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items()))
    return bool(later_synced) and future_ok and source.ignored_rows >= 1 and source.as_of < FUTURE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="show the seed's and the build's logs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR)
    base = load_settings()
    name = f"postrec_fault_future_{os.getpid()}"
    database_url = sqlalchemy_url(base.database_url).set(database=name).render_as_string(hide_password=False)
    settings = replace(base, database_url=database_url, prefix=name, data_dir=base.data_dir / name)
    ensure_database(database_url)
    engine = make_engine(database_url)
    client = redis_client(settings.redis_url, Role.BATCH)
    try:
        healthy = probe(settings, engine, client)
    finally:
        engine.dispose()
        drop(settings, client)
        client.close()
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    print("result: " + ("ok" if healthy else "FAILED"))
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
