"""The long-running processes: an RQ worker on the deployment's queues, and the cron scheduler."""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Sequence
from typing import Final

from common.redis_clients import Role
from common.settings import Settings, queue_url
from worker.connections import open_redis
from worker.queues import queue_names
from worker.recovering import RecoveringWorker
from worker.schedule import build_scheduler

log = logging.getLogger(__name__)

# The refresh's modules (the batch, CatBoost, scikit-learn) take seconds to import. RQ runs each job in a fresh
# fork of the worker, so importing them once in the worker saves those seconds on every shard.
PRELOADED: Final = "worker.refresh"


def run_worker(
    settings: Settings,
    roles: Sequence[str],
    burst: bool = False,
    with_scheduler: bool = True,
    preload: bool = True,
) -> bool:
    """Serve the queues of ``roles`` until stopped (or, with ``burst``, until they are empty).

    Args:
        settings: Redis URL and key prefix of the deployment.
        roles: Queue roles, highest priority first.
        burst: Quit once the queues are empty instead of waiting for more jobs.
        with_scheduler: Also move due delayed jobs (retries after an interval) back to their queues; RQ lets one
            worker per queue do it at a time.
        preload: Import the refresh's modules before the first job, so each job's fork starts with them.

    Returns:
        Whether any job was run.
    """
    if preload:
        importlib.import_module(PRELOADED)
    with open_redis(queue_url(settings), Role.RQ_WORKER) as connection:
        worker = RecoveringWorker(queue_names(settings.prefix, roles), connection=connection)
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=settings.log_level)


def run_scheduler(settings: Settings) -> None:
    """Enqueue the recurring jobs on time until SIGTERM or SIGINT."""
    name = f"{settings.prefix}@{socket.gethostname()}:{os.getpid()}"
    with open_redis(queue_url(settings), Role.RQ_WORKER) as connection:
        build_scheduler(connection, settings, name=name).start()  # type: ignore[no-untyped-call]
