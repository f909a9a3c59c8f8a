"""The API's own response bodies; the recommendation payloads are shared ones in :mod:`common.payloads`."""

from __future__ import annotations

import msgspec


class ErrorBody(msgspec.Struct, frozen=True):
    """Body of every error response: the HTTP status and a message saying what was wrong or what to do."""

    status: int
    message: str


class Health(msgspec.Struct, frozen=True):
    """Body of ``GET /health``.

    Attributes:
        status: ``"ok"`` when a version is live, Redis answers and the watcher is current; ``"stale"`` when the
            watcher's polls have failed (or it stopped) for a while, so the live version may not be the one Redis
            names; else ``"unavailable"``.
        version: The live version's id, or None before anything is published.
        version_age_s: Seconds since the live version was created.
        redis: Whether Redis answered a PING just now.
        redis_version: The version Redis names live right now (None when none, or Redis did not answer); differs
            from ``version`` when the watcher has not loaded it.
        watcher_error: Why the watcher's last poll failed, or None.
        watcher_last_ok_s: Seconds since the watcher's last successful poll (None when none succeeded).
    """

    status: str
    version: str | None
    version_age_s: float | None
    redis: bool
    redis_version: str | None = None
    watcher_error: str | None = None
    watcher_last_ok_s: float | None = None
