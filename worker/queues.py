"""RQ queues, and the policy each job kind runs under: its queue, time limit, retries and how long results stay.

Queue names carry the deployment's key prefix (``postrec:live``), so deployments sharing one Redis, and tests with
their own prefix, never take each other's jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job
from rq.registry import BaseRegistry

from common.settings import Settings
from worker.roles import BATCH, LIVE, ROLES

SHORT_TIMEOUT_S: Final = 10 * 60
RESULT_TTL_S: Final = 24 * 3600
FAILURE_TTL_S: Final = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """How one kind of job is enqueued.

    Attributes:
        role: The queue role it goes to (``live`` or ``batch``).
        timeout_s: Time limit of one attempt; the worker kills the attempt past it.
        retries: Further attempts after a failure (a crash or a killed worker counts too); a permanent error
            (:mod:`worker.failures`) is never retried.
        retry_interval_s: Wait before each further attempt.
        result_ttl_s: How long a finished job's result is kept.
        failure_ttl_s: How long a failed job stays in the failed registry for inspection.
    """

    role: str
    timeout_s: int
    retries: int
    retry_interval_s: int
    result_ttl_s: int = RESULT_TTL_S
    failure_ttl_s: int = FAILURE_TTL_S

    def retry(self) -> Retry | None:
        """The rq retry rule, None when the job is tried once only."""
        return Retry(max=self.retries, interval=self.retry_interval_s) if self.retries > 0 else None


def queue_name(prefix: str, role: str) -> str:
    """The RQ queue name of one role under the deployment's prefix."""
    return f"{prefix}:{role}"


def queue_names(prefix: str, roles: Sequence[str] = ROLES) -> list[str]:
    """RQ queue names of the given roles, in priority order."""
    return [queue_name(prefix, role) for role in roles]


def open_queue(connection: redis.Redis[bytes], prefix: str, role: str) -> Queue:
    """The RQ queue of one role."""
    return Queue(queue_name(prefix, role), connection=connection)


JOBS_MODULE: Final = "worker.jobs"
# Run in the work horse on a failure, before rq decides on a retry: permanent errors are not retried.
ON_FAILURE: Final = "worker.failures.stop_retrying_permanent"


def policies(settings: Settings) -> dict[str, JobPolicy]:
    """Policy of every job kind, by job function name."""
    retries, interval = settings.job_retries, settings.job_retry_interval_seconds
    long_timeout = settings.refresh_timeout_seconds
    return {
        "sync_likes": JobPolicy(LIVE, SHORT_TIMEOUT_S, retries, interval, result_ttl_s=3600),
        "start_refresh": JobPolicy(LIVE, SHORT_TIMEOUT_S, retries, interval),
        "refresh_user": JobPolicy(LIVE, SHORT_TIMEOUT_S, retries, interval),
        "finalize_version": JobPolicy(LIVE, SHORT_TIMEOUT_S, retries, interval),
        "refresh": JobPolicy(BATCH, long_timeout, retries, interval),
        "rescore": JobPolicy(BATCH, long_timeout, retries, interval),
        "score_shard": JobPolicy(BATCH, long_timeout, retries, interval),
    }


def enqueue_job(
    connection: redis.Redis[bytes],
    settings: Settings,
    func: Callable[..., Any] | str,
    *args: Any,  # noqa: ANN401 - plain job arguments: ids, version strings
    depends_on: Dependency | None = None,
) -> Job:
    """Enqueue ``func(*args)`` on its queue, under its kind's policy.

    Args:
        connection: Redis client RQ keeps its jobs in (bytes replies, as RQ needs).
        settings: Settings of the deployment: prefix, time limits, retries.
        func: A module-level job function of :mod:`worker.jobs`, or its name: modules that :mod:`worker.jobs`
            itself calls into enqueue by name, so that imports run one way.
        *args: Its plain arguments.
        depends_on: Jobs that must finish first.
    """
    name = func if isinstance(func, str) else func.__name__
    policy = policies(settings)[name]
    return open_queue(connection, settings.prefix, policy.role).enqueue_call(
        f"{JOBS_MODULE}.{name}",
        args=args,
        timeout=policy.timeout_s,
        result_ttl=policy.result_ttl_s,
        failure_ttl=policy.failure_ttl_s,
        retry=policy.retry(),
        on_failure=Callback(ON_FAILURE),
        depends_on=depends_on,
    )


def purge_queues(connection: redis.Redis[bytes], prefix: str) -> int:
    """Delete the deployment's queues with every job in them or in their registries (a clean slate for tests).

    Returns:
        How many jobs were deleted.
    """
    deleted = 0
    for role in ROLES:
        queue = open_queue(connection, prefix, role)
        for registry in _registries(queue):
            for job_id in registry.get_job_ids(cleanup=False):
                _delete_job(connection, job_id)
                deleted += 1
            connection.delete(registry.key)  # entries of the started registry name executions, not only jobs
        deleted += queue.count
        queue.delete(delete_jobs=True)
    return deleted


def _delete_job(connection: redis.Redis[bytes], job_id: str) -> None:
    try:
        Job.fetch(job_id, connection=connection).delete()
    except (NoSuchJobError, ValueError):
        # rq raises ValueError for a job whose dead attempt's execution record expired (a killed worker's job):
        # its keys all carry its id (a uuid4), so they are found by name.
        for key in connection.scan_iter(match=f"rq:*{job_id}*", count=1000):
            connection.unlink(key)


def _registries(queue: Queue) -> list[BaseRegistry]:
    return [
        queue.started_job_registry,
        queue.finished_job_registry,
        queue.failed_job_registry,
        queue.deferred_job_registry,
        queue.scheduled_job_registry,
        queue.canceled_job_registry,
    ]
