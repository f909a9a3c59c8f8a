"""Everything RQ keeps in Redis for one deployment, found and deleted: a clean slate for tests and benches.

RQ's keys all start with ``rq:`` whatever the deployment, so a deployment's are told apart by what they hold: keys
named after its queues (``<prefix>:live``, ``<prefix>:batch``), its jobs (whose ``origin`` is one of its queues) and
everything named after a job id, its workers and schedulers (whose ``queues`` are its queues), its cron scheduler
(named ``<prefix>@host:pid``) and cron jobs (named ``<prefix>:<job>``), and its members of RQ's shared sets.
Keys of other deployments sharing the Redis are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Final

import redis

from worker.queues import purge_queues

JOB: Final = "rq:job:"
WORKER: Final = "rq:worker:"
SCHEDULER: Final = "rq:scheduler:"
CRON_SCHEDULER: Final = "rq:cron_scheduler:"
QUEUE: Final = "rq:queue:"
SHARED_SETS: Final = ("rq:queues", "rq:workers")
SHARED_SORTED_SETS: Final = ("rq:cron_jobs", "rq:cron_schedulers")


@dataclass
class Found:
    """What belongs to the deployment: keys to delete, ids that name more keys, members of shared sets."""

    keys: set[bytes] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)


def purge_deployment(connection: redis.Redis[bytes], prefix_pattern: str) -> int:
    """Delete every RQ key of the deployments whose key prefix matches ``prefix_pattern`` (a glob, or one prefix).

    Returns:
        How many keys were deleted (members removed from RQ's shared sets not counted).
    """
    for prefix in _prefixes(connection, prefix_pattern):
        purge_queues(connection, prefix)
    found = Found()
    for key in connection.scan_iter(match="rq:*", count=1000):
        if _belongs(connection, key.decode(), prefix_pattern, found):
            found.keys.add(key)
    for identifier in found.ids:  # executions, results, dependents: named after a job id or worker name
        found.keys.update(connection.scan_iter(match=f"rq:*{identifier}*", count=1000))
    _remove_members(connection, prefix_pattern, found.ids)
    return sum(int(connection.unlink(*chunk)) for chunk in _chunks(sorted(found.keys)))


def _prefixes(connection: redis.Redis[bytes], prefix_pattern: str) -> set[str]:
    """Deployment prefixes with a queue in RQ's set of queues."""
    queues = (member.decode().removeprefix(QUEUE) for member in connection.smembers("rq:queues"))
    return {queue.rsplit(":", 1)[0] for queue in queues if _ours(queue, prefix_pattern)}


def _ours(queue: str, prefix_pattern: str) -> bool:
    return fnmatchcase(queue, f"{prefix_pattern}:*")


def _belongs(connection: redis.Redis[bytes], key: str, prefix_pattern: str, found: Found) -> bool:
    """Whether the key is the deployment's, recording ids whose keys go with it."""
    if fnmatchcase(key, f"rq:*:{prefix_pattern}:*") or fnmatchcase(key, f"{CRON_SCHEDULER}{prefix_pattern}@*"):
        return True  # named after one of its queues or cron jobs, or its cron scheduler
    if key.startswith(JOB) and key.count(":") == 2:
        origin = connection.hget(key, "origin")
        return _record(found, key.removeprefix(JOB), origin is not None and _ours(origin.decode(), prefix_pattern))
    if key.startswith((WORKER, SCHEDULER)) and key.count(":") == 2:
        queues = connection.hget(key, "queues")
        names = queues.decode().split(",") if queues else []
        return _record(found, key.split(":", 2)[2], bool(names) and all(_ours(q, prefix_pattern) for q in names))
    return False


def _record(found: Found, identifier: str, ours: bool) -> bool:
    if ours:
        found.ids.add(identifier)
    return ours


def _remove_members(connection: redis.Redis[bytes], prefix_pattern: str, ids: set[str]) -> None:
    """Take the deployment's queues, workers, cron jobs and cron schedulers out of RQ's shared sets."""
    for key in SHARED_SETS:
        members = [m for m in connection.smembers(key) if _member_is_ours(m.decode(), prefix_pattern, ids)]
        if members:
            connection.srem(key, *members)
    # Workers whose record expired (killed, or stopped long ago) stay in the shared set until RQ lists workers.
    dangling = [member for member in connection.smembers("rq:workers") if not connection.exists(member)]
    if dangling:
        connection.srem("rq:workers", *dangling)
    for key in SHARED_SORTED_SETS:
        members = [m for m in connection.zrange(key, 0, -1) if _member_is_ours(m.decode(), prefix_pattern, ids)]
        if members:
            connection.zrem(key, *members)


def _member_is_ours(member: str, prefix_pattern: str, ids: set[str]) -> bool:
    name = member.removeprefix(QUEUE).removeprefix(WORKER)
    return _ours(name, prefix_pattern) or fnmatchcase(name, f"{prefix_pattern}@*") or name in ids


def _chunks(keys: Iterable[bytes], size: int = 1000) -> Iterable[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
