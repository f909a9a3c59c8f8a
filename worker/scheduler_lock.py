"""RQ's scheduler lock: one scheduler per queue moves due delayed jobs (retries after an interval) back to it.

rq holds the lock ``rq:scheduler-lock:<queue>`` for a minute past the holder's last heartbeat, and other workers try
to take it only at their maintenance ticks. A worker killed hard therefore left every retry of its queues waiting
minutes. Here the lock lasts :data:`LOCK_TTL_S` past the holder's last heartbeat (it beats every second), a holder
that runs on this host under a pid that no longer exists is cleared at once, and a worker that shuts down gives up
whatever lock its scheduler still holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import psutil
import redis
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import acquire_or_refresh_lock, release_lock

log = logging.getLogger(__name__)

# How long a scheduler's lock outlives its last heartbeat (one a second): rq's own is 61 s.
LOCK_TTL_S: Final = 15


def shorten_locks(connection: redis.Redis[bytes], scheduler_name: str, queue_names: Iterable[str]) -> None:
    """Set the TTL of the locks ``scheduler_name`` holds to :data:`LOCK_TTL_S` (a lock held by another is left)."""
    for name in queue_names:
        acquire_or_refresh_lock(connection, RQScheduler.get_locking_key(name), scheduler_name, LOCK_TTL_S)


def release_locks(connection: redis.Redis[bytes], scheduler_name: str, queue_names: Iterable[str]) -> None:
    """Delete the locks that ``scheduler_name`` still holds; locks of other schedulers stay."""
    for name in queue_names:
        release_lock(connection, RQScheduler.get_locking_key(name), scheduler_name)


def clear_dead_locks(connection: redis.Redis[bytes], queue_names: Iterable[str], hostname: str) -> list[str]:
    """Delete the queues' scheduler locks whose holder ran on ``hostname`` under a pid that no longer exists.

    A holder on another host is left to its lock's TTL: its pid cannot be checked from here.

    Returns:
        The queues whose lock was cleared.
    """
    cleared = []
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        raw = connection.get(key)
        holder = raw.decode() if raw is not None else None
        if holder and _is_dead_here(connection, holder, hostname) and release_lock(connection, key, holder):
            log.warning("cleared the scheduler lock of a dead scheduler: queue=%s holder=%s", name, holder)
            cleared.append(name)
    return cleared


def _is_dead_here(connection: redis.Redis[bytes], scheduler_name: str, hostname: str) -> bool:
    # A holder with no record is left alone: rq takes the lock just before the scheduler records itself.
    host, pid = connection.hmget(SCHEDULER_KEY_TEMPLATE % scheduler_name, ["hostname", "pid"])
    if host is None or pid is None or not pid.isdigit():
        return False
    return host.decode() == hostname and not pid_exists(int(pid))


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie, dead but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
