"""The recurring jobs, run through RQ's own cron scheduler (``rq.cron``): the likes sync every minute and the
full refresh nightly. One scheduler process per deployment (``postrec scheduler``) enqueues them; workers run them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from rq.cron import CronScheduler

from common.settings import Settings
from worker import jobs
from worker.queues import JobPolicy, policies, queue_name


def build_scheduler(connection: redis.Redis[bytes], settings: Settings, name: str = "") -> CronScheduler:
    """A cron scheduler with every recurring job of the deployment registered.

    Args:
        connection: Redis client RQ keeps its jobs in.
        settings: Intervals, the refresh's cron expression, the key prefix of the queues.
        name: Name shown by RQ's monitoring; RQ makes one up from host and pid when empty.
    """
    scheduler = CronScheduler(connection=connection, logging_level=settings.log_level, name=name)
    table = policies(settings)
    _register(scheduler, settings, jobs.sync_likes, table["sync_likes"], interval=settings.likes_sync_interval_seconds)
    _register(scheduler, settings, jobs.start_refresh, table["start_refresh"], cron=settings.refresh_cron)
    return scheduler


def _register(
    scheduler: CronScheduler,
    settings: Settings,
    func: Callable[..., Any],
    policy: JobPolicy,
    interval: int | None = None,
    cron: str | None = None,
) -> None:
    # rq's cron jobs take no retry rule; the refresh's is applied by start_refresh, and a failed likes sync is
    # simply run again at the next interval.
    scheduler.register(
        func,
        queue_name(settings.prefix, policy.role),
        interval=interval,
        cron=cron,
        job_timeout=policy.timeout_s,
        result_ttl=policy.result_ttl_s,
        failure_ttl=policy.failure_ttl_s,
        name=f"{settings.prefix}:{func.__name__}",  # RQ's history of the cron job, per deployment
    )
