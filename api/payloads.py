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
        status: ``"ok"`` when a version is live and Redis answers, else ``"unavailable"``.
        version: The live version's id, or None before anything is published.
        version_age_s: Seconds since the live version was created.
        redis: Whether Redis answered a PING just now.
    """

    status: str
    version: str | None
    version_age_s: float | None
    redis: bool
