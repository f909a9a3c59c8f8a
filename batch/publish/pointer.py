"""Flipping ``current`` on Redis Cluster, where ``current``, ``previous`` and a version's meta lie in three slots.

One Redis runs the flip as one script over the three keys (:mod:`batch.publish.release`). A cluster refuses a
script over keys of several slots (CROSSSLOT), so there the flip is a sequence whose one step that decides what
is served, the write of ``current``, is a compare-and-set script on that single key:

1. the meta's required fields are checked (a version whose meta is incomplete never goes live);
2. ``previous`` is set to the live version, before the flip, so the version being replaced is never unprotected
   from the clean-up of old versions;
3. ``current`` is set only if it still names the version read in step 2; if another publish flipped meanwhile,
   the sequence starts again from step 2 (a few times at most).

What a reader can see in between: for the moment between steps 2 and 3, ``previous`` equals ``current``. The API
reads only ``current``, so serving never sees a mixed state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import redis

from common.errors import PublishError
from common.keys import KeyLayout

FLIP_ATTEMPTS: Final = 5

# Sets KEYS[1] to ARGV[2] only if it holds ARGV[1] ('' standing for no value); returns the value it held.
COMPARE_AND_SET_LUA: Final = """
local held = redis.call('GET', KEYS[1]) or ''
if held ~= ARGV[1] then return redis.error_reply('CHANGED ' .. KEYS[1] .. ' changed meanwhile') end
redis.call('SET', KEYS[1], ARGV[2])
return held
"""


class PointerChangedError(PublishError):
    """The pointer held another value than expected: another flip won the race."""


def missing_meta_field(client: redis.Redis[bytes], meta_key: str, required: Sequence[str]) -> str | None:
    """The first required field the meta hash lacks (all of them when it does not exist), or None."""
    present = client.hmget(meta_key, list(required))
    return next((name for name, value in zip(required, present, strict=True) if value is None), None)


def compare_and_set(client: redis.Redis[bytes], key: str, expected: str | None, value: str) -> None:
    """Set ``key`` to ``value`` only if it still holds ``expected`` (None: no value), in one step on its slot.

    Raises:
        PointerChangedError: ``key`` holds something else.
    """
    try:
        client.register_script(COMPARE_AND_SET_LUA)(keys=[key], args=[expected or "", value])
    except redis.ResponseError as exc:
        if str(exc).startswith("CHANGED"):
            raise PointerChangedError(str(exc)) from None
        raise


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def make_live_across_slots(
    client: redis.Redis[bytes], keys: KeyLayout, version: str, required: Sequence[str]
) -> str | None:
    """Point ``current`` at ``version`` if its meta is complete; returns the version that was live.

    Raises:
        redis.ResponseError: The meta lacks a required field (as the single-Redis script answers).
        PublishError: Other flips kept winning the race :data:`FLIP_ATTEMPTS` times.
    """
    missing = missing_meta_field(client, keys.meta(version), required)
    if missing is not None:
        raise redis.ResponseError(f"version {version} is incomplete: meta lacks {missing}")
    for _ in range(FLIP_ATTEMPTS):
        old = _text(client.get(keys.current))
        if old == version:
            return old
        if old is not None:
            client.set(keys.previous, old)
        try:
            compare_and_set(client, keys.current, old, version)
        except PointerChangedError:
            continue
        return old
    raise PublishError(f"version {version} was not made live: `current` kept changing under concurrent publishes")


def rollback_across_slots(
    client: redis.Redis[bytes], keys: KeyLayout, previous: str, required: Sequence[str]
) -> str | None:
    """Make ``previous`` live and the version it replaces ``previous``; returns the version that was live.

    Raises:
        PublishError: ``previous`` changed meanwhile, is incomplete or deleted, or ``current`` changed meanwhile.
    """
    if _text(client.get(keys.previous)) != previous:
        raise PublishError("cannot roll back: previous changed meanwhile: retry")
    if missing_meta_field(client, keys.meta(previous), required) is not None:
        raise PublishError(f"cannot roll back: previous version {previous} is incomplete or deleted")
    live = _text(client.get(keys.current))
    try:
        compare_and_set(client, keys.current, live, previous)
    except PointerChangedError:
        raise PublishError("cannot roll back: the live version changed meanwhile: retry") from None
    if live is None:
        client.delete(keys.previous)
    else:
        client.set(keys.previous, live)
    return live
