"""The live version held in process, and the watcher that follows flips of the ``current`` pointer.

A version's post catalog is loaded and pre-encoded in full before the switch, and the switch is one reference
assignment: a request that reads :attr:`VersionWatcher.live` once holds a consistent (version, meta, catalog).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import msgspec

from api.store import Store
from common.ab import CONTROL, TEST
from common.errors import PostrecError, StoreUnavailableError
from common.payloads import Post, VersionMeta

log = logging.getLogger(__name__)

# A flip of `current` is served within one poll interval plus the catalog's load time.
POLL_INTERVAL_S: Final = 0.25

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


class VersionWatcher:
    """Holds the live version and polls Redis for a new one in the background."""

    def __init__(self, store: Store, poll_interval_s: float = POLL_INTERVAL_S) -> None:
        """Watch the store's ``current`` pointer every ``poll_interval_s`` seconds once started."""
        self.live: LiveVersion | None = None
        self._store = store
        self._poll_interval_s = poll_interval_s
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def refresh(self) -> None:
        """Switch to the version ``current`` names, loading it first; drop it when nothing is published.

        Raises:
            StoreUnavailableError: Redis cannot be reached; the version held so far stays live.
        """
        version = await self._store.current_version()
        if version is None:
            self.live = None
        elif self.live is None or self.live.version != version:
            started = time.perf_counter()
            live = await load_version(self._store, version)
            self.live = live
            seconds = time.perf_counter() - started
            log.info("live version %s: posts=%d load_s=%.3f", version, len(live.catalog), seconds)

    async def start(self) -> None:
        """Load the live version now (when Redis answers) and keep following it in the background."""
        await self._refresh_logged()
        self._task = asyncio.create_task(self._poll_forever(), name="postrec-version-watcher")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            await self._refresh_logged()

    async def _refresh_logged(self) -> None:
        """Refresh, logging a failure once when it starts and once when it ends rather than on every poll."""
        try:
            await self.refresh()
        except StoreUnavailableError as exc:
            self._report_failure(str(exc))
        except (PostrecError, msgspec.DecodeError) as exc:
            self._report_failure(f"cannot load the version `current` names: {exc}")
        else:
            if self._failing:
                log.info("version watcher recovered: version=%s", self.live.version if self.live else None)
            self._failing = False

    def _report_failure(self, message: str) -> None:
        if not self._failing:
            log.warning("version watcher: %s (still serving version %s)", message, self.live and self.live.version)
        self._failing = True
