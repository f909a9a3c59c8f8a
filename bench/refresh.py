"""Worker-side figures: a refresh's time, its sharded scoring with 1 and 2 worker processes, and the likes sync.

    .venv/bin/python bench/refresh.py --scale medium --workers 1 2 --runs 3
    .venv/bin/python bench/refresh.py --scale medium --only sync --runs 5

The world is seeded once into its own database (``postrec_bench_<scale>``) and reused. The refresh job's part
(the batch's steps up to training, then staging) runs once in this process; then, for each worker count, the
trained model is staged again as a new version and scored in shards by real ``postrec worker`` processes up to the
flip, so the figure that varies with workers is measured without retraining. Each run uses its own key prefix,
deleted afterwards. On a 2-core machine two workers share the cores (and CatBoost already uses both), so the second
worker shows the sharding's overhead more than a gain; on separate machines shards run side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import redis
import sqlalchemy as sa
from rq import Queue, Worker
from rq.job import Job, JobStatus

from batch.pipeline.prepared import Prepared
from batch.pipeline.source import Source
from batch.publish.release import new_version_id
from common.db import ensure_database, make_engine, sqlalchemy_url
from common.keys import KeyLayout
from common.settings import Settings, load_settings
from worker.likes import sync_likes
from worker.queues import open_queue, purge_queues
from worker.refresh import enqueue_shards, prepare_refresh, stage_version
from worker.roles import BATCH

POSTREC = str(Path(sys.executable).parent / "postrec")


def bench_settings(scale: str) -> Settings:
    base = load_settings()
    url = sqlalchemy_url(base.database_url).set(database=f"postrec_bench_{scale}")
    return replace(base, database_url=url.render_as_string(hide_password=False), prefix="postrec_bench")


def environment(settings: Settings, prefix: str) -> dict[str, str]:
    return {
        **os.environ,
        "POSTREC_DATABASE_URL": settings.database_url,
        "POSTREC_REDIS_URL": settings.redis_url,
        "POSTREC_PREFIX": prefix,
        "POSTREC_LOG_LEVEL": "WARNING",
        "POSTREC_SHARD_USERS": str(settings.shard_users),
    }


def ensure_world(settings: Settings, scale: str) -> None:
    ensure_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT to_regclass('feed_data') IS NOT NULL")).scalar()
            rows = conn.execute(sa.text("SELECT count(*) FROM feed_data")).scalar() if exists else 0
    finally:
        engine.dispose()
    if not rows:
        print(f"seeding a {scale} world into {settings.database_url.rsplit('/', 1)[-1]} ...", flush=True)
        env = environment(settings, settings.prefix)
        subprocess.run([POSTREC, "seed", "--scale", scale], env=env, check=True)


def delete_prefix(client: redis.Redis[bytes], prefix: str) -> None:
    purge_queues(client, prefix)
    for key in client.scan_iter(match=f"{prefix}:*", count=5000):
        client.unlink(key)


def bench_sync(settings: Settings, runs: int) -> None:
    engine = make_engine(settings.database_url)
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis_url)
    rates, seconds = [], []
    try:
        for _ in range(runs):
            prefix = f"postrec_bench_{uuid.uuid4().hex[:8]}"
            report = sync_likes(engine, client, KeyLayout(prefix))
            again = sync_likes(engine, client, KeyLayout(prefix))
            delete_prefix(client, prefix)
            rates.append(report.rows / report.seconds)
            seconds.append(again.seconds)
            print(f"  sync: {report.rows} likes in {report.seconds:.2f} s; no-op rerun {again.seconds:.3f} s")
    finally:
        engine.dispose()
        client.close()
    print(f"likes sync, first run: median {statistics.median(rates):,.0f} likes/s over {runs} runs")
    print(f"likes sync, rerun with nothing new: median {statistics.median(seconds):.3f} s")


def start_workers(
    env: dict[str, str], count: int, client: redis.Redis[bytes], queue: Queue
) -> list[subprocess.Popen[bytes]]:
    processes = [subprocess.Popen([POSTREC, "worker"], env=env) for _ in range(count)]
    deadline = time.monotonic() + 120
    while len(Worker.all(queue=queue)) < count:  # imports done, listening: not part of the figure
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.2)
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=120)


def wait_for(job: Job) -> None:
    while job.get_status(refresh=True) not in (JobStatus.FINISHED, JobStatus.FAILED):
        time.sleep(0.1)
    if job.get_status() != JobStatus.FINISHED:
        raise RuntimeError(f"job {job.id} failed: {job.latest_result()}")


def score_once(settings: Settings, state: Prepared, client: redis.Redis[bytes], workers: int) -> tuple[float, float]:
    """Stage a new version of the already trained state, then score it on ``workers`` workers. Returns seconds of
    staging and of scoring up to the flip."""
    env = environment(settings, settings.prefix)
    processes = start_workers(env, workers, client, open_queue(client, settings.prefix, BATCH))
    try:
        started = time.perf_counter()
        source: Source = replace(state.source, version=new_version_id(state.source.as_of))
        plan = stage_version(client, KeyLayout(settings.prefix), replace(state, source=source), settings)
        staged = time.perf_counter()
        wait_for(enqueue_shards(client, settings, plan))
        return staged - started, time.perf_counter() - staged
    finally:
        stop_workers(processes)


def bench_refresh(settings: Settings, worker_counts: list[int], runs: int) -> None:
    settings = replace(settings, prefix=f"postrec_bench_{uuid.uuid4().hex[:8]}")
    engine = make_engine(settings.database_url)
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis_url)
    try:
        started = time.perf_counter()
        _, state = prepare_refresh(settings, engine, client)
        print(
            f"refresh job (validate, extract, features, samples, train, evaluate, stage): "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        users, posts = state.score_features.user_ids.size, state.score_features.post_ids.size
        print(f"scoring {users} users x {posts} posts in shards of {settings.shard_users} users", flush=True)
        for workers in worker_counts:
            timings = [score_once(settings, state, client, workers) for _ in range(runs)]
            for stage_s, score_s in timings:
                print(f"  {workers} worker(s): stage {stage_s:.1f} s, shards + flip {score_s:.1f} s", flush=True)
            median = statistics.median(score_s for _, score_s in timings)
            print(
                f"shards + flip, {workers} worker(s): median {median:.1f} s over {runs} runs "
                f"({users * posts / median / 1e6:.2f} M pairs/s)",
                flush=True,
            )
    finally:
        engine.dispose()
        delete_prefix(client, settings.prefix)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="medium", choices=("tiny", "small", "medium", "full"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("sync", "refresh"), default=None)
    parser.add_argument("--shard-users", type=int, default=2_500, help="users per scoring shard")
    args = parser.parse_args()
    settings = replace(bench_settings(args.scale), shard_users=args.shard_users)
    ensure_world(settings, args.scale)
    if args.only in (None, "sync"):
        bench_sync(settings, args.runs)
    if args.only in (None, "refresh"):
        bench_refresh(settings, args.workers, args.runs)


if __name__ == "__main__":
    main()
