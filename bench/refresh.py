"""Worker-side figures: a refresh's time, its sharded scoring with 1 and 2 worker processes, and the likes sync.

    .venv/bin/python bench/refresh.py --scale medium --workers 1 2 --runs 3
    .venv/bin/python bench/refresh.py --scale medium --only sync --runs 5
    .venv/bin/python bench/refresh.py --scale small --kill --runs 3

``--kill`` measures recovery instead: two workers score a staged version, one is SIGKILLed (the process only, as
the OOM killer or a lost machine would) while it is in the middle of a shard, and the figure is the time from the
kill until the new version is live, with when the dead worker's shard was retried. The killed worker is the one
whose scheduler holds the batch queue's scheduler lock, the worst case: its retries need a new scheduler.

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
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import psutil
import redis
import sqlalchemy as sa
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler

from batch.pipeline.prepared import Prepared
from batch.pipeline.source import Source
from batch.publish.release import new_version_id
from common.db import ensure_database, make_engine, sqlalchemy_url
from common.keys import KeyLayout
from common.settings import Settings, load_settings
from worker.likes import sync_likes
from worker.queues import open_queue, queue_name
from worker.refresh import enqueue_shards, prepare_refresh, stage_version
from worker.roles import BATCH
from worker.rq_state import purge_deployment

POSTREC = str(Path(sys.executable).parent / "postrec")
T = TypeVar("T")
KILL_INTO_SHARD_S = 1.0


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
    purge_deployment(client, prefix)
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
    pids = {process.pid for process in processes}
    deadline = time.monotonic() + 120
    while len([w for w in Worker.all(queue=queue) if w.pid in pids]) < count:  # imports done: not in the figure
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.2)
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
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
        final = stage_new_version(settings, state, client)
        staged = time.perf_counter()
        wait_for(final)
        return staged - started, time.perf_counter() - staged
    finally:
        stop_workers(processes)


def stage_new_version(settings: Settings, state: Prepared, client: redis.Redis[bytes]) -> Job:
    """Stage the already trained state as a new version and enqueue its shards. Returns the final job."""
    source: Source = replace(state.source, version=new_version_id(state.source.as_of))
    plan = stage_version(client, KeyLayout(settings.prefix), replace(state, source=source), settings)
    return enqueue_shards(client, settings, plan)


def lock_holder_pid(client: redis.Redis[bytes], settings: Settings) -> int | None:
    """The pid of the worker whose scheduler holds the batch queue's scheduler lock."""
    holder = client.get(RQScheduler.get_locking_key(queue_name(settings.prefix, BATCH)))
    pid = client.hget(f"rq:scheduler:{holder.decode()}", "pid") if holder else None
    return psutil.Process(int(pid)).ppid() if pid else None


def running_shard(client: redis.Redis[bytes], settings: Settings, pid: int) -> Job | None:
    """The shard job the worker with this pid is running, if any."""
    batch = open_queue(client, settings.prefix, BATCH)
    names = {w.name for w in Worker.all(queue=batch) if w.pid == pid}
    jobs = Job.fetch_many(batch.started_job_registry.get_job_ids(), connection=client)
    return next((job for job in jobs if job is not None and job.worker_name in names), None)


def wait_until(condition: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while (value := condition()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


def kill_once(settings: Settings, state: Prepared, client: redis.Redis[bytes]) -> tuple[float, float]:
    """Two workers score a new version; the one holding the scheduler lock is SIGKILLed mid-shard. Returns seconds
    from the kill until its shard's attempt was noticed as dead (and its retry scheduled), and until the new version
    was live."""
    env = environment(settings, settings.prefix)
    processes = start_workers(env, 2, client, open_queue(client, settings.prefix, BATCH))
    try:
        final = stage_new_version(settings, state, client)
        victim = wait_until(lambda: lock_holder_pid(client, settings), 60, "a scheduler lock")
        shard = wait_until(lambda: running_shard(client, settings, victim), 300, "a shard on the victim")
        time.sleep(KILL_INTO_SHARD_S)  # in the middle of it
        os.kill(victim, signal.SIGKILL)
        killed = time.perf_counter()
        wait_until(lambda: shard.get_status(refresh=True) != JobStatus.STARTED or None, 600, "the retry")
        retried = time.perf_counter() - killed
        wait_for(final)
        return retried, time.perf_counter() - killed
    finally:
        stop_workers(processes)


def bench_kill(settings: Settings, state: Prepared, client: redis.Redis[bytes], runs: int) -> None:
    timings = [kill_once(settings, state, client) for _ in range(runs)]
    for retried, live in timings:
        print(f"  hard kill mid-shard: dead attempt noticed after {retried:.1f} s, new version live after {live:.1f} s")
    median = statistics.median(live for _, live in timings)
    print(
        f"hard kill mid-shard -> new version live: median {median:.1f} s over {runs} runs "
        f"(dead attempt noticed after median {statistics.median(r for r, _ in timings):.1f} s, then the retry "
        f"interval of {settings.job_retry_interval_seconds} s)",
        flush=True,
    )


def bench_refresh(settings: Settings, worker_counts: list[int], runs: int, kill: bool = False) -> None:
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
        if kill:
            bench_kill(settings, state, client, runs)
            return
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
    parser.add_argument("--kill", action="store_true", help="measure recovery from a worker killed mid-shard")
    args = parser.parse_args()
    settings = replace(bench_settings(args.scale), shard_users=args.shard_users)
    ensure_world(settings, args.scale)
    if args.only in (None, "sync") and not args.kill:
        bench_sync(settings, args.runs)
    if args.only in (None, "refresh") or args.kill:
        bench_refresh(settings, args.workers, args.runs, kill=args.kill)


if __name__ == "__main__":
    main()
