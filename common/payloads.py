"""msgspec structs exchanged between the batch, the serving store and the API."""

from __future__ import annotations

import msgspec


class Post(msgspec.Struct, frozen=True):
    """A post as the API returns it (the course checker's shape)."""

    id: int
    text: str
    topic: str


class Recommendations(msgspec.Struct, frozen=True):
    """Response of ``GET /post/recommendations/``."""

    exp_group: str
    recommendations: list[Post]
