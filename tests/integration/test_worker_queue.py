"""RQ plumbing with real `postrec worker` processes: enqueue, run, retry, wait, and the cron scheduler."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from rq.cron import CronScheduler
from rq.job import Job, JobStatus
from rq.results import Result
from sqlalchemy.engine import Engine

from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import make_version, publish
from worker import jobs
from worker.queues import SHORT_TIMEOUT_S, enqueue_job, open_queue
from worker.recovering import MAINTENANCE_INTERVAL_S
from worker.roles import BATCH, LIVE
from worker.rq_state import purge_deployment

POSTREC = str(Path(sys.executable).parent / "postrec")


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "POSTREC_DATABASE_URL": settings.database_url,
        "POSTREC_REDIS_URL": settings.redis_url,
        "POSTREC_PREFIX": settings.prefix,
        "POSTREC_DATA_DIR": str(settings.data_dir),
        "POSTREC_JOB_RETRY_INTERVAL_SECONDS": "0",
        **extra,
    }


def postrec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POSTREC, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def clean_queues(redis_client: redis.Redis, key_prefix: str) -> Iterator[None]:
    yield
    purge_deployment(redis_client, key_prefix)


@pytest.fixture
def likes(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO feed_data VALUES (:ts, :user, :post, 'like', NULL)"),
            [
                {"ts": datetime(2021, 10, 1, 9), "user": 200, "post": 11},
                {"ts": datetime(2021, 10, 2, 9), "user": 201, "post": 12},
            ],
        )


@pytest.mark.usefixtures("likes")
def test_enqueued_sync_runs_on_a_burst_worker(settings: Settings, redis_client: redis.Redis, keys: KeyLayout) -> None:
    env = environment(settings)
    assert postrec(env, "sync-likes").returncode == 0
    assert open_queue(redis_client, settings.prefix, LIVE).count == 1
    worker = postrec(env, "worker", "--burst")
    assert worker.returncode == 0, worker.stderr
    assert redis_client.smembers(keys.liked(200)) == {b"11"}
    assert redis_client.smembers(keys.liked(201)) == {b"12"}
    (job_id,) = open_queue(redis_client, settings.prefix, LIVE).finished_job_registry.get_job_ids()
    assert Job.fetch(job_id, connection=redis_client).return_value()["added"] == 2


@pytest.mark.usefixtures("likes")
def test_wait_prints_the_result_once_a_worker_ran_the_job(settings: Settings, redis_client: redis.Redis) -> None:
    env = environment(settings)
    waiting = subprocess.Popen([POSTREC, "sync-likes", "--wait", "--timeout", "60"], env=env, stdout=subprocess.PIPE)
    try:
        wait_until(lambda: open_queue(redis_client, settings.prefix, LIVE).count == 1)
        assert postrec(env, "worker", "--burst").returncode == 0
        out, _ = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 0
    assert json.loads(out)["added"] == 2


def test_failing_job_is_retried_then_fails_for_good(settings: Settings, redis_client: redis.Redis) -> None:
    missing = settings.database_url.rsplit("/", 1)[0] + "/postrec_no_such_database"
    env = environment(settings, POSTREC_DATABASE_URL=missing, POSTREC_JOB_RETRIES="1")
    waiting = subprocess.Popen(
        [POSTREC, "sync-likes", "--wait", "--timeout", "60"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: open_queue(redis_client, settings.prefix, LIVE).count == 1)
        assert postrec(env, "worker", "--burst").returncode == 0
        _, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 2
    assert "ended failed" in err and "postrec_no_such_database" in err
    (job_id,) = open_queue(redis_client, settings.prefix, LIVE).failed_job_registry.get_job_ids()
    job = Job.fetch(job_id, connection=redis_client)
    assert job.retries_left == 0  # the one retry was used: the job ran twice
    assert [result.type for result in job.results()] == [Result.Type.FAILED]


def test_a_permanent_error_fails_at_once_without_retries(
    settings: Settings, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    # A live version whose model artifact is on no machine: refresh --user can never succeed on it.
    publish(redis_client, keys, make_version("elsewhere", range(200, 210), list(range(1, 30))))
    env = environment(settings, POSTREC_JOB_RETRIES="2", POSTREC_JOB_RETRY_INTERVAL_SECONDS="600")
    waiting = subprocess.Popen(
        [POSTREC, "refresh", "--user", "200", "--wait", "--timeout", "60"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: open_queue(redis_client, settings.prefix, LIVE).count == 1)
        assert postrec(env, "worker", "--burst", "--queues", "live", "--no-preload").returncode == 0
        _, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 2
    assert "ended failed" in err and "its model is not on this machine" in err
    (job_id,) = open_queue(redis_client, settings.prefix, LIVE).failed_job_registry.get_job_ids()
    assert Job.fetch(job_id, connection=redis_client).retries_left == 0  # not scheduled for a retry in 600 s
    assert redis_client.get(keys.current) == b"elsewhere"


def test_enqueued_job_carries_its_policy(settings: Settings, redis_client: redis.Redis) -> None:
    job = enqueue_job(redis_client, replace(settings, job_retries=3), jobs.sync_likes)
    job = Job.fetch(job.id, connection=redis_client)
    assert job.origin == f"{settings.prefix}:live"
    assert job.timeout == SHORT_TIMEOUT_S
    assert job.retries_left == 3
    assert job.failure_ttl is not None and job.result_ttl is not None
    assert job.get_status() == JobStatus.QUEUED


def test_scheduler_enqueues_the_likes_sync(settings: Settings, redis_client: redis.Redis) -> None:
    scheduler = subprocess.Popen([POSTREC, "scheduler"], env=environment(settings), stderr=subprocess.DEVNULL)
    queue = open_queue(redis_client, settings.prefix, LIVE)
    try:
        wait_until(lambda: queue.count >= 1)
        registered = [s for s in CronScheduler.all(redis_client) if s.name.startswith(f"{settings.prefix}@")]
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
    assert queue.jobs[0].func_name == "worker.jobs.sync_likes"
    assert queue.jobs[0].timeout == SHORT_TIMEOUT_S
    assert len(registered) == 1
    assert {job.func_name for job in registered[0].get_jobs()} == {
        "worker.jobs.sync_likes",
        "worker.jobs.start_refresh",
    }


@pytest.mark.usefixtures("likes")
def test_purging_a_deployment_leaves_no_rq_key_of_it(settings: Settings, redis_client: redis.Redis) -> None:
    before = set(redis_client.scan_iter(match="rq:*", count=1000))
    env = environment(settings)
    scheduler = subprocess.Popen([POSTREC, "scheduler"], env=env, stderr=subprocess.DEVNULL)
    try:  # the cron scheduler's records and history, jobs with results, a worker and its scheduler
        wait_until(lambda: open_queue(redis_client, settings.prefix, LIVE).count >= 1)
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
    assert postrec(env, "worker", "--burst").returncode == 0
    assert postrec(env, "refresh", "--user", "200").returncode == 0  # a job left queued
    assert set(redis_client.scan_iter(match="rq:*", count=1000)) - before

    purge_deployment(redis_client, settings.prefix)
    left = set(redis_client.scan_iter(match="rq:*", count=1000)) - before
    # rq:clean_groups is RQ's lock of one maintenance tick, shared by every deployment; it lapses within seconds.
    assert {key for key in left if not 0 < redis_client.ttl(key) <= MAINTENANCE_INTERVAL_S} == set()


def test_nightly_entry_enqueues_the_refresh_with_its_retry_rule(settings: Settings, redis_client: redis.Redis) -> None:
    enqueue_job(redis_client, replace(settings, job_retries=2), jobs.start_refresh)
    env = environment(settings, POSTREC_JOB_RETRIES="2")
    assert postrec(env, "worker", "--burst", "--queues", "live", "--no-preload").returncode == 0
    (refresh,) = open_queue(redis_client, settings.prefix, BATCH).jobs
    assert refresh.func_name == "worker.jobs.refresh"
    assert refresh.retries_left == 2
    assert refresh.timeout == settings.refresh_timeout_seconds
