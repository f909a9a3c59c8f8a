"""A worker killed hard (SIGKILL) in the middle of a job, with real `postrec worker` processes: its work horse and
scheduler die with it, its scheduler lock goes to a surviving worker at once, and the survivor retries the job by
itself. And a worker stopped gracefully gives its scheduler lock up."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest
import redis
from rq import Retry, Worker
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler

from common.settings import Settings
from tests.integration.test_worker_queue import POSTREC, environment, wait_until
from worker.queues import open_queue, queue_name
from worker.recovering import HEARTBEAT_GRACE_S, JOB_MONITORING_INTERVAL_S
from worker.roles import BATCH, LIVE
from worker.rq_state import purge_deployment
from worker.scheduler_lock import clear_dead_locks

pytestmark = pytest.mark.slow

JOB_SECONDS = 5


@pytest.fixture(autouse=True)
def clean_queues(redis_client: redis.Redis, key_prefix: str) -> Iterator[None]:
    yield
    purge_deployment(redis_client, key_prefix)
    for role in (LIVE, BATCH):
        redis_client.delete(RQScheduler.get_locking_key(queue_name(key_prefix, role)))


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def lock_holder(client: redis.Redis, settings: Settings) -> str | None:
    raw = client.get(RQScheduler.get_locking_key(queue_name(settings.prefix, BATCH)))
    return raw.decode() if raw is not None else None


def scheduler_pid(client: redis.Redis, name: str | None) -> int | None:
    raw = client.hget(f"rq:scheduler:{name}", "pid") if name else None
    return int(raw) if raw else None


def start_worker(settings: Settings, processes: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    env = environment(settings, POSTREC_LOG_LEVEL="WARNING")
    process = subprocess.Popen([POSTREC, "worker", "--no-preload"], env=env, stderr=subprocess.DEVNULL)
    processes.append(process)
    return process


def children_of(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_a_hard_killed_worker_takes_its_children_along_and_its_job_is_retried_by_the_survivor(
    settings: Settings, redis_client: redis.Redis, processes: list[subprocess.Popen[bytes]]
) -> None:
    doomed = start_worker(settings, processes)
    wait_until(lambda: scheduler_pid(redis_client, lock_holder(redis_client, settings)) is not None)
    dead_scheduler = lock_holder(redis_client, settings)
    queue = open_queue(redis_client, settings.prefix, BATCH)
    job = queue.enqueue(time.sleep, JOB_SECONDS, retry=Retry(max=1, interval=1))
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED and len(children_of(doomed.pid)) == 2)
    children = children_of(doomed.pid)  # the work horse and the scheduler process

    doomed.kill()
    killed_at = time.time()
    doomed.wait(timeout=30)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], "the horse or the scheduler outlived its worker"

    # The dead worker's job is noticed once its heartbeat expires: within the monitoring interval and a grace.
    (expires_at,) = [score for _, score in redis_client.zrange(queue.started_job_registry.key, 0, -1, withscores=True)]
    assert expires_at <= killed_at + JOB_MONITORING_INTERVAL_S + HEARTBEAT_GRACE_S + 1

    survivor = start_worker(settings, processes)

    # The dead scheduler ran on this host: the survivor clears its lock as it starts (at worst it lapses in 15 s).
    def survivor_schedules() -> bool:
        holder = lock_holder(redis_client, settings)
        pid = scheduler_pid(redis_client, holder)  # recorded once the scheduler process has started
        return holder != dead_scheduler and pid in {child.pid for child in children_of(survivor.pid)}

    wait_until(survivor_schedules, timeout_s=30)
    # The survivor's own clean-up retries the job (after the retry interval, moved by its scheduler) and runs it.
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, timeout_s=120)
    assert Job.fetch(job.id, connection=redis_client).worker_name in {w.name for w in Worker.all(queue=queue)}

    survivor.terminate()  # a graceful stop gives the lock up
    survivor.wait(timeout=30)
    assert lock_holder(redis_client, settings) is None


def test_only_locks_of_schedulers_dead_on_this_host_are_cleared(settings: Settings, redis_client: redis.Redis) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    here, queues = socket.gethostname(), [queue_name(settings.prefix, role) for role in (LIVE, BATCH)]
    holders = {LIVE: ("dead-here", here, gone.pid), BATCH: ("alive-here", here, psutil.Process().pid)}
    for role, (name, host, pid) in holders.items():
        redis_client.set(RQScheduler.get_locking_key(queue_name(settings.prefix, role)), name, ex=60)
        redis_client.hset(f"rq:scheduler:{name}", mapping={"name": name, "hostname": host, "pid": pid})
    try:
        assert clear_dead_locks(redis_client, queues, here) == [queue_name(settings.prefix, LIVE)]
        assert clear_dead_locks(redis_client, queues, "another-host") == []
    finally:
        redis_client.delete(*(f"rq:scheduler:{name}" for name, _, _ in holders.values()))
    assert lock_holder(redis_client, settings) == "alive-here"
