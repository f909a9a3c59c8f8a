"""The live version held in process, and the watcher that follows flips of the ``current`` pointer.

A version's post catalog is loaded and pre-encoded in full before the switch, and the switch is one reference
assignment: a request that reads :attr:`VersionWatcher.live` once holds a consistent (version, meta, catalog).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import msgspec

from api.store import Store
from common.ab import CONTROL, TEST
from common.errors import NoPublishedVersionError, PostrecError, StoreUnavailableError
from common.payloads import Post, VersionMeta

log = logging.getLogger(__name__)

# A flip of `current` is served within one poll interval plus the catalog's load time.
POLL_INTERVAL_S: Final = 0.25
# /health calls the watcher stale when its last successful poll is older than this: about 20 polls, far longer than
# a full-scale catalog load.
STALE_AFTER_S: Final = 5.0
# An app's shutdown waits at most this long for the watcher's task (a poll in flight is bounded by the Redis timeout).
STOP_WAIT_S: Final = 2.0

_POST_DECODER: Final = msgspec.json.Decoder(Post)
_RESPONSE_HEAD: Final = {group: b'{"exp_group":"%s","recommendations":[' % group.encode() for group in (CONTROL, TEST)}
_RESPONSE_TAIL: Final = b"]}"


@dataclass(frozen=True, slots=True)
class LiveVersion:
    """One published version as the API serves it.

    Attributes:
        version: The version id.
        meta: Its metadata (salt and percent of the A/B split, as_of, ...).
        catalog: Post id -> the post's JSON, encoded once so that a response is a concatenation.
    """

    version: str
    meta: VersionMeta
    catalog: Mapping[int, bytes]

    def response_body(self, group: str, post_ids: list[bytes]) -> bytes:
        """The JSON of a :class:`~common.payloads.Recommendations` for these post ids, in their order."""
        posts = (self.catalog.get(int(post_id)) for post_id in post_ids)
        return _RESPONSE_HEAD[group] + b",".join(post for post in posts if post is not None) + _RESPONSE_TAIL

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the version was created, or None when its created_at does not parse."""
        try:
            created = datetime.fromisoformat(self.meta.created_at)
        except ValueError:
            return None
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return (now - created).total_seconds()


async def load_version(store: Store, version: str) -> LiveVersion:
    """Read a version's meta and its whole catalog from Redis.

    Raises:
        PostrecError: The version's meta is missing (it was deleted) or malformed.
        StoreUnavailableError: Redis cannot be reached.
    """
    raw_meta = await store.version_meta(version)
    if not raw_meta:
        raise PostrecError(f"version {version} has no meta in Redis: republish it with `postrec build`")
    try:
        meta = VersionMeta.from_hash(raw_meta)
    except msgspec.ValidationError as exc:
        raise PostrecError(f"version {version} has malformed meta ({exc}): republish it with `postrec build`") from None
    catalog: dict[int, bytes] = {}
    async for page in store.catalog_pages(version):
        for value in page.values():
            post = _POST_DECODER.decode(value)
            catalog[post.id] = msgspec.json.encode(post)
    return LiveVersion(version=version, meta=meta, catalog=catalog)


@dataclass(frozen=True, slots=True)
class WatcherState:
    """How the watcher is doing, for ``/health``.

    Attributes:
        error: Why the last poll failed, or None when it succeeded.
        seconds_since_ok: Seconds since the last successful poll, or None when none has succeeded yet.
        running: Whether the polling task is alive.
    """

    error: str | None
    seconds_since_ok: float | None
    running: bool

    @property
    def stale(self) -> bool:
        """The live version may no longer be the one Redis names: polls fail, or the watcher has stopped."""
        return not self.running or self.seconds_since_ok is None or self.seconds_since_ok > STALE_AFTER_S


class VersionWatcher:
    """Holds the live version and polls Redis for a new one in the background, through any error."""

    def __init__(self, store: Store, poll_interval_s: float = POLL_INTERVAL_S) -> None:
        """Watch the store's ``current`` pointer every ``poll_interval_s`` seconds once started."""
        self.live: LiveVersion | None = None
        self._store = store
        self._poll_interval_s = poll_interval_s
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None
        self._last_ok: float | None = None
        self._dropped: str | None = None  # the version live before `current` vanished (Redis restarted empty?)
        self._stopping = False

    async def refresh(self) -> None:
        """Switch to the version ``current`` names, loading it first; drop it when nothing is published.

        Raises:
            StoreUnavailableError: Redis failed; the version held so far stays live.
        """
        version = await self._store.current_version()
        if version is None:
            if self.live is not None:
                log.warning("version watcher: Redis names no version any more (was %s)", self.live.version)
                self._dropped = self.live.version
            self.live = None
        elif self.live is None or self.live.version != version:
            started = time.perf_counter()
            live = await load_version(self._store, version)
            self.live = live
            seconds = time.perf_counter() - started
            log.info("live version %s: posts=%d load_s=%.3f", version, len(live.catalog), seconds)

    def state(self) -> WatcherState:
        """The watcher's health now."""
        since_ok = None if self._last_ok is None else time.monotonic() - self._last_ok
        return WatcherState(self._error, since_ok, self._task is not None and not self._task.done())

    def no_version_error(self) -> PostrecError:
        """Why nothing is live, for a request that arrives meanwhile: Redis failing, emptied, or never published."""
        if self._error is not None:
            return StoreUnavailableError(f"no version loaded: {self._error}")
        if self._dropped is not None:
            return NoPublishedVersionError(
                f"no published version: Redis no longer names one (version {self._dropped} was live; was Redis "
                "restarted empty?): see 'Redis restarted empty' in docs/operations.md"
            )
        return NoPublishedVersionError()

    async def start(self) -> None:
        """Load the live version now (when Redis answers) and keep following it in the background."""
        await self._refresh_logged()
        self._task = asyncio.create_task(self._poll_forever(), name="postrec-version-watcher")

    async def stop(self) -> None:
        """Stop polling, promptly: an app's shutdown waits for this.

        Cancelling alone is not enough: redis-py can swallow a cancellation that lands inside one of its calls and
        turn it into a connection error, which the poll loop survives by design (shutdown then hung for good). The
        loop also checks a stop flag, and the wait for it is bounded.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("version watcher ended with %r", task.exception())

    async def _poll_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._poll_interval_s)
            if not self._stopping:
                await self._refresh_logged()

    async def _refresh_logged(self) -> None:
        """Refresh, logging a failure once when it starts and once when it ends rather than on every poll.

        Any exception is caught: this is the top of the watcher's task, and a watcher that died would keep serving
        its version for good (its keys deleted later, every user 404) while Redis moved on.
        """
        try:
            await self.refresh()
        except StoreUnavailableError as exc:
            self._report_failure(str(exc))
        except (PostrecError, msgspec.DecodeError) as exc:
            self._report_failure(f"cannot load the version `current` names: {exc}")
        except Exception as exc:  # the top of the task: keep polling through anything
            log.exception("version watcher: unexpected error, retrying")
            self._report_failure(f"unexpected error in the version watcher ({type(exc).__name__})")
        else:
            if self._error is not None:
                log.info("version watcher recovered: version=%s", self.live.version if self.live else None)
            self._error = None
            self._last_ok = time.monotonic()

    def _report_failure(self, message: str) -> None:
        if self._error is None:
            log.warning("version watcher: %s (still serving version %s)", message, self.live and self.live.version)
        self._error = message
