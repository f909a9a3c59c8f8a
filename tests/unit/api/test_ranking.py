"""The serving rule: first N of the user's list that are not liked, topped up from the popular list."""

from __future__ import annotations

import pytest

from api.ranking import first_unliked


@pytest.mark.parametrize(
    ("ranked", "liked", "limit", "fallback", "expected"),
    [
        ([5, 4, 3, 2, 1], set(), 3, [], [5, 4, 3]),
        ([5, 4, 3, 2, 1], {4}, 3, [], [5, 3, 2]),
        ([5, 4, 3, 2, 1], {5, 4, 3, 2, 1}, 3, [], []),
        ([5, 4], {4}, 3, [9, 5, 8, 7], [5, 9, 8]),  # top-up skips a repeat of 5
        ([5, 4], set(), 5, [4, 1, 6], [5, 4, 1, 6]),  # both lists too short: fewer than limit
        ([5, 4], set(), 5, [7, 7, 8], [5, 4, 7, 8]),  # repeats inside the fallback are dropped too
        ([5, 4, 3], {9}, 2, [9, 8], [5, 4]),  # fallback untouched while the list suffices
        ([], {1}, 2, [1, 2, 3], [2, 3]),  # liked posts are skipped in the fallback as well
        ([3, 3, 2], set(), 2, [], [3, 2]),
        ([7, 6, 5], set(), 1, [], [7]),
    ],
)
def test_first_unliked(
    ranked: list[int], liked: set[int], limit: int, fallback: list[int], expected: list[int]
) -> None:
    assert first_unliked(ranked, liked, limit, fallback) == expected


def test_keeps_list_order_not_id_order() -> None:
    assert first_unliked([10, 2, 30, 4], {30}, 3) == [10, 2, 4]


def test_accepts_generators_and_stops_reading_once_full() -> None:
    consumed: list[int] = []

    def ranked() -> object:
        for post_id in range(100):
            consumed.append(post_id)
            yield post_id

    assert first_unliked(ranked(), {1}, 3) == [0, 2, 3]  # type: ignore[arg-type]
    assert consumed == [0, 1, 2, 3]


def test_zero_limit_reads_nothing() -> None:
    assert first_unliked([1, 2], set(), 0, [3]) == []
