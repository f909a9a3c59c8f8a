"""The serving rule on Redis Cluster, where a version's popular list lies in another slot than the user's keys.

A server-side script may touch one slot only, so on a cluster :data:`~common.serving.RECOMMEND_LUA` runs with the
user's two keys (list and liked set, which share the user's hash tag) and skips the top-up. When it returns fewer
posts than asked (the list ran short of unliked posts), the caller completes the answer in a second step: it asks
the user's liked set (``SMISMEMBER``) about the popular posts not chosen yet (:func:`top_up_candidates`), and
:func:`top_up` appends the first unliked ones. The answer is the one the script gives on a single Redis; only a like
recorded between the two steps could tell them apart. The API and the evaluation both serve this way on a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from common.keys import KeyLayout
from common.serving import recommend_call

USER_SLOT_KEYS: Final = 2


def user_slot_call(
    keys: KeyLayout, version: str, user_id: int, limit: int
) -> tuple[tuple[str, ...], tuple[int | str, ...]]:
    """KEYS (the user's list and liked set only) and ARGV of the serving script on a cluster."""
    script_keys, argv = recommend_call(keys, version, user_id, limit)
    return script_keys[:USER_SLOT_KEYS], argv


def top_up_candidates(chosen: Sequence[bytes], popular: Sequence[bytes]) -> list[bytes]:
    """The popular posts, in order, without those already chosen and without repeats."""
    seen = set(chosen)
    candidates = []
    for post_id in popular:
        if post_id not in seen:
            seen.add(post_id)
            candidates.append(post_id)
    return candidates


def top_up(chosen: Sequence[bytes], candidates: Sequence[bytes], liked: Sequence[int], limit: int) -> list[bytes]:
    """``chosen`` followed by the first candidates not liked, up to ``limit`` posts.

    Args:
        chosen: What the script chose from the user's list.
        candidates: :func:`top_up_candidates` of the version's popular list.
        liked: ``SMISMEMBER`` of the user's liked set for each candidate (1: liked).
        limit: Posts wanted.
    """
    answer = list(chosen)
    for post_id, is_liked in zip(candidates, liked, strict=True):
        if len(answer) >= limit:
            break
        if not is_liked:
            answer.append(post_id)
    return answer
