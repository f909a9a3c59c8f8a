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


class VersionMeta(msgspec.Struct, frozen=True, kw_only=True):
    """A published version's metadata, stored as the hash ``<prefix>:v:<ver>:meta`` (one field per attribute).

    ``metrics`` and ``models`` are JSON text inside the hash so redis-cli shows them readably.
    """

    version: str
    as_of: str
    created_at: str
    models: str
    salt: str
    control_percent: int
    k: int
    users: int
    posts: int
    metrics: str = "{}"

    def to_hash(self) -> dict[str, str]:
        """Field -> string mapping for HSET."""
        return {name: str(getattr(self, name)) for name in self.__struct_fields__}

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes] | dict[str, str]) -> VersionMeta:
        """Rebuild from HGETALL's reply."""
        decoded = {_text(k): _text(v) for k, v in raw.items()}
        return msgspec.convert(decoded, cls, strict=False)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
