"""The one place Redis clients are made: every role gets timeouts that fit what it waits for.

A client without a socket timeout waits for the kernel's TCP timeout (many minutes) when a Redis host stops
answering; every client here has one. The roles:

- ``API``: the serving path (asyncio, made by :func:`api_client`): fails within the API's own budget.
- ``BATCH``: build, score, rollback, evaluate, the A/B report: bulk writes and long scans.
- ``JOB``: what a worker job opens for its own run, and the commands that enqueue or wait for jobs.
- ``RQ_WORKER``: the connection an RQ worker blocks on while it waits for work (``BLPOP`` with a long timeout), so
  its read timeout must stay above RQ's own wait.
- ``PROBE``: a quick yes/no (does Redis answer at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to connect, and to wait for each reply (None: wait as long as the command blocks)."""

    connect_s: float
    reply_s: float | None


class Role(Enum):
    """Who is asking, which decides how long a client waits."""

    BATCH = "batch"
    JOB = "job"
    RQ_WORKER = "rq-worker"
    PROBE = "probe"


# RQ workers block in BLPOP for up to rq's default dequeue timeout (405 s), then loop: the read timeout stays above.
RQ_DEQUEUE_TIMEOUT_S: Final = 405
TIMEOUTS: Final = {
    Role.BATCH: Timeouts(connect_s=5.0, reply_s=60.0),
    Role.JOB: Timeouts(connect_s=5.0, reply_s=60.0),
    Role.RQ_WORKER: Timeouts(connect_s=5.0, reply_s=RQ_DEQUEUE_TIMEOUT_S + 60.0),
    Role.PROBE: Timeouts(connect_s=1.0, reply_s=1.0),
}


def redis_client(redis_url: str, role: Role) -> redis.Redis[bytes]:
    """A synchronous client (bytes replies, as RQ needs them) with the timeouts of ``role``."""
    timeouts = TIMEOUTS[role]
    client: redis.Redis[bytes] = redis.Redis.from_url(
        redis_url, socket_connect_timeout=timeouts.connect_s, socket_timeout=timeouts.reply_s
    )
    return client


def api_client(redis_url: str, timeout_s: float) -> aioredis.Redis[bytes]:
    """The API's asyncio client: short timeouts, and one immediate retry on a broken connection.

    Loopback or same-rack Redis answers in well under a millisecond, so ``timeout_s`` (to connect, and for each
    reply; ``POSTREC_API_REDIS_TIMEOUT_MS``) only bounds how long a dead or hung Redis holds a request. The retry
    covers pooled connections left dead by a Redis restart, so service resumes on the first request after Redis is
    back; timeouts are not retried, so a hung Redis costs one timeout, not several.
    """
    return aioredis.Redis.from_url(
        redis_url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,)),
    )
