"""Container health checks: is a worker, or the scheduler, of this deployment alive on this host?

Run as ``python -m worker.health worker|scheduler``; exits 0 when healthy, 1 otherwise. A process counts as alive
when RQ's registry holds it, on this host, with a heartbeat younger than ``max_age_s``.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import redis
from rq import Worker
from rq.cron import CronScheduler

from common.redis_clients import Role, redis_client
from common.settings import load_settings, queue_url
from worker.queues import open_queue
from worker.roles import ROLES

# An idle RQ worker beats once per blocking wait for jobs (every 10 s, see worker.recovering), a busy one every few
# seconds; the cron scheduler at least once a minute. The margins allow for a machine under heavy load.
WORKER_MAX_AGE: Final = timedelta(minutes=10)
SCHEDULER_MAX_AGE: Final = timedelta(minutes=3)


def worker_alive(
    connection: redis.Redis[bytes], prefix: str, hostname: str, max_age: timedelta = WORKER_MAX_AGE
) -> bool:
    """Whether a worker on ``hostname`` serves one of the deployment's queues and beat recently."""
    for role in ROLES:
        for worker in Worker.all(queue=open_queue(connection, prefix, role)):
            if worker.hostname == hostname and _recent(worker.last_heartbeat, max_age):
                return True
    return False


def scheduler_alive(
    connection: redis.Redis[bytes], prefix: str, hostname: str, max_age: timedelta = SCHEDULER_MAX_AGE
) -> bool:
    """Whether the deployment's cron scheduler runs on ``hostname`` and beat recently."""
    mine = f"{prefix}@{hostname}:"
    return any(
        scheduler.name.startswith(mine) and _recent(scheduler.last_heartbeat, max_age)
        for scheduler in CronScheduler.all(connection)
    )


def _recent(moment: datetime | None, max_age: timedelta) -> bool:
    return moment is not None and datetime.now(UTC) - moment.replace(tzinfo=UTC) <= max_age


def main(argv: Sequence[str]) -> int:
    """Entry point of ``python -m worker.health worker|scheduler``."""
    settings = load_settings()
    check = scheduler_alive if list(argv) == ["scheduler"] else worker_alive
    client = redis_client(queue_url(settings), Role.JOB)
    try:
        return 0 if check(client, settings.prefix, socket.gethostname()) else 1
    except redis.RedisError:
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
