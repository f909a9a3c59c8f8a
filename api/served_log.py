"""The served log, best-effort: answers are appended to the ``served`` stream in batches, never waited for.

An answer never waits for, or fails with, its log entry. Entries are encoded on the hot path and sent every
:data:`FLUSH_INTERVAL_S` (or every :data:`FLUSH_ENTRIES`) as one write on the hot path's pipelined connection, so
their replies come back together too: one XADD per answer sent alone cost about a quarter more server CPU per
request (an extra write and an extra read wake-up). Replies are only checked to count failures, which ``/metrics``
shows as ``postrec_served_log_failures_total`` by reason. A full Redis (``maxmemory`` under ``noeviction``) thus
loses log entries, counted, while reads go on being answered; so does a process killed within a flush interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import hiredis
from redis.exceptions import ResponseError

from api.cluster_wire import ClusterWire
from api.metrics import Metrics
from api.wire import RedisWire, Reply, encode_command
from common.errors import StoreUnavailableError
from common.keys import KeyLayout
from common.serving import ServedEntry, served_log_command

FLUSH_INTERVAL_S: Final = 0.05
FLUSH_ENTRIES: Final = 256


class ServedLog:
    """Appends answers to the capped ``served`` stream, counting the entries Redis did not take."""

    def __init__(self, wire: RedisWire | ClusterWire, keys: KeyLayout, served_maxlen: int, metrics: Metrics) -> None:
        """Write through ``wire`` into ``keys.served``, capped near ``served_maxlen``; count failures in ``metrics``."""
        self._wire = wire
        self._keys = keys
        self._served_maxlen = served_maxlen
        self._metrics = metrics
        self._pending: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(self, entry: ServedEntry) -> None:
        """Queue the entry's XADD and return at once; it is sent with the next batch."""
        self._pending.append(encode_command(served_log_command(self._keys, self._served_maxlen, entry)))
        if len(self._pending) >= FLUSH_ENTRIES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> bool:
        """Send the entries queued so far; those that cannot be sent (no connection) are counted as lost.

        Returns:
            True when entries were sent.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        if not pending:
            return False
        if not self._wire.send_nowait(pending, self._check):
            self._metrics.count_served_log_failure("not connected", len(pending))
            return False
        return True

    async def drain(self) -> None:
        """Send what is queued and wait (at most the wire's timeout) until Redis has answered it: on shutdown."""
        if self.flush():
            with contextlib.suppress(StoreUnavailableError, ResponseError):
                await self._wire.call("PING")  # replies come in order: the entries before it are answered

    def _check(self, reply: Reply) -> None:
        if isinstance(reply, hiredis.ReplyError):
            self._metrics.count_served_log_failure(str(reply).split(" ", 1)[0])  # OOM, READONLY, NOAUTH, ...
        elif isinstance(reply, StoreUnavailableError):
            self._metrics.count_served_log_failure("unreachable")
