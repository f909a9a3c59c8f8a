"""msgspec structs exchanged between the batch, the serving store and the API."""

from __future__ import annotations

from typing import Final

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

    Build it with ``batch.publish.release.version_meta``. ``models`` (A/B group or ``embedding`` -> what scored it)
    and ``metrics`` (name -> validation figure) are typed here and encoded as JSON text inside the hash, once, by
    :meth:`to_hash`, so redis-cli shows them readably.
    """

    version: str
    as_of: str
    created_at: str
    models: dict[str, str]
    salt: str
    control_percent: int
    k: int
    users: int
    posts: int
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    baselines: dict[str, float] = msgspec.field(default_factory=dict)

    def to_hash(self) -> dict[str, str]:
        """Field -> string mapping for HSET."""
        return {name: _field_text(getattr(self, name)) for name in self.__struct_fields__}

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes] | dict[str, str]) -> VersionMeta:
        """Rebuild from HGETALL's reply.

        Raises:
            msgspec.ValidationError: A field is missing or malformed (``models`` or ``metrics`` not JSON included).
        """
        decoded: dict[str, object] = {_text(k): _text(v) for k, v in raw.items()}
        for name in JSON_FIELDS:
            if name in decoded:
                decoded[name] = _json_field(name, str(decoded[name]))
        return msgspec.convert(decoded, cls, strict=False)


# The fields held as JSON text inside the hash.
JSON_FIELDS: Final = ("models", "metrics", "baselines")


def _field_text(value: object) -> str:
    return msgspec.json.encode(value).decode() if isinstance(value, dict) else str(value)


def _json_field(name: str, text: str) -> object:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise msgspec.ValidationError(f"meta field {name} is not JSON: {text[:80]!r}") from None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
