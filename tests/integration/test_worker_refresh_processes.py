"""The sharded refresh on real `postrec worker` processes: shards spread over two workers, a worker killed in the
middle of a shard, and two refreshes at once. A version is either live whole or not at all."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import psutil
import pytest
import redis
from rq import Worker
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy.engine import Engine

from batch.publish.release import REQUIRED_FIELDS
from batch.world.seed import seed_database
from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import make_version, publish
from tests.integration.test_worker_queue import POSTREC, environment, wait_until
from worker import refresh as sharded
from worker.queues import open_queue
from worker.roles import BATCH
from worker.rq_state import purge_deployment

pytestmark = pytest.mark.slow

SHARD_USERS = 30  # 300 users of the tiny world: 10 shards


@pytest.fixture
def world(settings: Settings, engine: Engine) -> Settings:
    seed_database(engine, "tiny", 42)
    # The tiny world's model is below popularity: its refreshes publish anyway (the guard has its own tests).
    return replace(settings, shard_users=SHARD_USERS, k=40, job_retry_interval_seconds=0, allow_worse=True)


@pytest.fixture(autouse=True)
def clean_queues(redis_client: redis.Redis, key_prefix: str) -> Iterator[None]:
    yield
    purge_deployment(redis_client, key_prefix)


class Workers:
    """`postrec worker` processes, stopped (warm shutdown) after the test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.options: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> list[subprocess.Popen[bytes]]:
        started = [
            subprocess.Popen([POSTREC, "worker", *self.options], env=self.env, stderr=subprocess.DEVNULL)
            for _ in range(count)
        ]
        self.processes += started
        return started

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def workers(world: Settings) -> Iterator[Workers]:
    pool = Workers(environment(world, POSTREC_SHARD_USERS=str(SHARD_USERS), POSTREC_K="40", POSTREC_ALLOW_WORSE="1"))
    yield pool
    pool.stop()


ENDED = frozenset({JobStatus.FINISHED, JobStatus.FAILED})


def wait_for_end(job: Job, timeout_s: float = 300) -> JobStatus:
    wait_until(lambda: job.get_status(refresh=True) in ENDED, timeout_s=timeout_s)
    return job.get_status()


def assert_live_whole(client: redis.Redis, keys: KeyLayout, version: str, users: int) -> None:
    meta = {k.decode(): v.decode() for k, v in client.hgetall(keys.meta(version)).items()}
    assert set(REQUIRED_FIELDS) <= set(meta), f"version {version} live with incomplete meta {sorted(meta)}"
    lists = list(client.scan_iter(match=keys.version_prefix(version) + "recs:*", count=1000))
    assert len(lists) == int(meta["users"]) == users


def kill_with_horse(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker and its work horse (which RQ puts in a process group of its own), the worker first."""
    horses = psutil.Process(worker.pid).children(recursive=True)
    assert horses, "the worker has no work horse running"
    worker.kill()
    worker.wait(timeout=30)
    for horse in horses:
        horse.kill()
    psutil.wait_procs(horses, timeout=30)


def worker_name(client: redis.Redis, settings: Settings, pid: int) -> str:
    queue = open_queue(client, settings.prefix, BATCH)
    wait_until(lambda: any(w.pid == pid for w in Worker.all(queue=queue)))
    return next(w.name for w in Worker.all(queue=queue) if w.pid == pid)


def test_shards_spread_over_two_workers_and_the_version_goes_live(
    world: Settings, engine: Engine, redis_client: redis.Redis, keys: KeyLayout, workers: Workers
) -> None:
    workers.start(2)
    plan, _ = sharded.prepare_refresh(world, engine, redis_client)
    final = sharded.enqueue_shards(redis_client, world, plan)
    assert wait_for_end(final) == JobStatus.FINISHED
    assert redis_client.get(keys.current) == plan.version.encode()
    assert_live_whole(redis_client, keys, plan.version, users=300)
    finished = open_queue(redis_client, world.prefix, BATCH).finished_job_registry
    shard_jobs = [job for job in Job.fetch_many(finished.get_job_ids(), connection=redis_client) if job]
    assert len(shard_jobs) == plan.shards
    assert len({job.worker_name for job in shard_jobs}) == 2

    # refresh_user through the CLI and a real worker, on the version that just went live
    user = plan.shard_first_users[1]
    command = [POSTREC, "refresh", "--user", str(user), "--wait", "--timeout", "120"]
    answer = subprocess.run(command, env=workers.env, capture_output=True, text=True, check=True, timeout=180)
    posts = redis_client.llen(keys.recs(plan.version, user))
    assert json.loads(answer.stdout) == {"user_id": user, "version": plan.version, "posts": posts}
    assert posts > 0


@pytest.mark.parametrize(("retries", "new_goes_live"), [(1, True), (0, False)])
def test_worker_killed_mid_shard_leaves_a_whole_new_version_or_the_old_one(
    world: Settings,
    engine: Engine,
    redis_client: redis.Redis,
    keys: KeyLayout,
    workers: Workers,
    retries: int,
    new_goes_live: bool,
) -> None:
    publish(redis_client, keys, make_version("old", range(200, 210), list(range(1, 30))))
    settings = replace(world, job_retries=retries)
    workers.env["POSTREC_JOB_RETRIES"] = str(retries)
    # Without preloading, each job first imports the batch (seconds): on a tiny world that keeps a shard running
    # long enough to be caught in the middle.
    workers.options = ["--no-preload"]
    doomed, survivor = workers.start(2)
    doomed_name = worker_name(redis_client, settings, doomed.pid)
    plan, _ = sharded.prepare_refresh(settings, engine, redis_client)
    final = sharded.enqueue_shards(redis_client, settings, plan)
    started = StartedJobRegistry(open_queue(redis_client, settings.prefix, BATCH).name, connection=redis_client)

    def doomed_shard() -> Job | None:
        jobs = [job for job in Job.fetch_many(started.get_job_ids(), connection=redis_client) if job]
        return next((job for job in jobs if job.worker_name == doomed_name), None)

    wait_until(lambda: doomed_shard() is not None, timeout_s=120)
    victim = doomed_shard()
    assert victim is not None
    kill_with_horse(doomed)  # the machine dies in the middle of the shard
    assert victim.get_status(refresh=True) == JobStatus.STARTED

    # The survivor scores every other shard, then idles while the final job waits on the dead one, until RQ
    # notices the dead worker's job: once its heartbeat has lapsed (20 s), at the survivor's next registry clean-up
    # (every 10 s; test_worker_recovery.py waits for that). Here, to save that half minute, the same clean-up is run
    # as of a moment past expiry.
    batch = open_queue(redis_client, settings.prefix, BATCH)

    def only_the_dead_shard_left() -> bool:
        return batch.count == 0 and started.get_job_ids(cleanup=False) == [victim.id]

    wait_until(lambda: only_the_dead_shard_left() or final.get_status(refresh=True) in ENDED, timeout_s=300)
    if final.get_status(refresh=True) not in ENDED:
        started.cleanup(timestamp=time.time() + 3600)

    status = wait_for_end(final)
    live = redis_client.get(keys.current)
    if new_goes_live:
        assert status == JobStatus.FINISHED
        assert live == plan.version.encode()
        assert_live_whole(redis_client, keys, plan.version, users=300)
    else:
        assert status == JobStatus.FAILED
        assert live == b"old"
        assert list(redis_client.scan_iter(match=keys.version_prefix(plan.version) + "*")) == []
    assert survivor.poll() is None


def test_two_concurrent_refreshes_never_make_a_mixed_version_live(
    world: Settings, redis_client: redis.Redis, keys: KeyLayout, workers: Workers
) -> None:
    seen: dict[bytes, bool] = {}
    stop = threading.Event()

    def watch() -> None:  # every version that is ever live must be whole at that moment
        client = redis.Redis.from_url(world.redis_url)
        while not stop.is_set():
            live = client.get(keys.current)
            if live is not None and live not in seen:
                meta = client.hgetall(keys.meta(live.decode()))
                whole = {field.encode() for field in REQUIRED_FIELDS} <= set(meta)
                lists = sum(1 for _ in client.scan_iter(match=keys.version_prefix(live.decode()) + "recs:*"))
                seen[live] = whole and lists == int(meta.get(b"users", -1))
            time.sleep(0.02)
        client.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        workers.start(2)
        waits = [
            subprocess.Popen(
                [POSTREC, "refresh", "--wait", "--timeout", "600"], env=workers.env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        results = [json.loads(wait.communicate(timeout=660)[0]) for wait in waits]
    finally:
        stop.set()
        watcher.join()
    assert all(wait.returncode == 0 for wait in waits)
    versions = {result["version"] for result in results}
    assert len(versions) == 2
    live, previous = redis_client.get(keys.current).decode(), redis_client.get(keys.previous).decode()
    assert {live, previous} == versions
    assert_live_whole(redis_client, keys, live, users=300)
    assert seen and all(seen.values()), seen
