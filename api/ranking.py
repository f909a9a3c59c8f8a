"""The serving rule, as a pure function: the first posts of a user's ranked list that the user has not liked.

The API applies this rule inside Redis (the server-side script in :mod:`api.store`) so that a request costs one
round trip; this module is the rule's reference, and an integration test checks that the script agrees with it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from itertools import chain


def first_unliked(ranked: Iterable[int], liked: Container[int], limit: int, fallback: Iterable[int] = ()) -> list[int]:
    """The first ``limit`` posts of ``ranked`` not in ``liked``, topped up from ``fallback`` when ranked runs short.

    Args:
        ranked: The user's precomputed list, best first.
        liked: Posts the user has liked (at request time).
        limit: How many posts to return at most.
        fallback: The version's popular list, used only after ``ranked`` is exhausted.

    Returns:
        Post ids in list order, without liked posts and without repeats; shorter than ``limit`` only when both
        lists together hold fewer eligible posts.
    """
    chosen: list[int] = []
    seen: set[int] = set()
    if limit <= 0:
        return chosen
    for post_id in chain(ranked, fallback):
        if post_id not in liked and post_id not in seen:
            seen.add(post_id)
            chosen.append(post_id)
            if len(chosen) == limit:
                break
    return chosen
