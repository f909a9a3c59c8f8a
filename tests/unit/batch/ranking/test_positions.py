"""Membership and entry listing of CSRs of pairs, checked against plain Python sets."""

from __future__ import annotations

import numpy as np
import pytest

from batch.ranking.positions import csr_contains, csr_entries, id_positions, positions_or_last


def random_csr(rng: np.random.Generator, rows: int, columns: int) -> tuple[np.ndarray, np.ndarray, set]:
    pairs = {(int(r), int(c)) for r, c in zip(rng.integers(0, rows, 80), rng.integers(0, columns, 80), strict=True)}
    ordered = sorted(pairs)
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount([r for r, _ in ordered], minlength=rows), out=indptr[1:])
    return indptr, np.array([c for _, c in ordered], dtype=np.int16), pairs


@pytest.mark.parametrize("seed", range(5))
def test_contains_answers_like_a_set_of_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    indptr, indices, pairs = random_csr(rng, rows=12, columns=9)
    rows, cols = rng.integers(0, 12, 200), rng.integers(0, 9, 200)

    found = csr_contains(indptr, indices, 9, rows, cols)

    assert found.tolist() == [(int(r), int(c)) in pairs for r, c in zip(rows, cols, strict=True)]


def test_contains_without_entries_or_questions_is_all_false() -> None:
    rows = np.array([0, 1], dtype=np.int64)
    assert csr_contains(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16), 5, rows, rows).tolist() == [False] * 2
    assert csr_contains(np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int16), 5, rows, rows).tolist() == [False] * 2
    assert csr_contains(np.array([0, 1]), np.array([2], dtype=np.int16), 5, rows[:0], rows[:0]).size == 0


def test_entries_list_the_asked_rows_in_the_order_asked() -> None:
    indptr, indices = np.array([0, 2, 2, 5], dtype=np.int64), np.array([1, 4, 0, 2, 3], dtype=np.int16)

    owners, columns = csr_entries(indptr, indices, np.array([2, 0, 1], dtype=np.int64))

    assert owners.tolist() == [0, 0, 0, 1, 1] and columns.tolist() == [0, 2, 3, 1, 4]


def test_positions_mark_missing_ids() -> None:
    positions, known = positions_or_last(np.array([3, 7, 9], dtype=np.int32), np.array([9, 4, 3, 10]))
    assert positions[known].tolist() == [2, 0] and known.tolist() == [True, False, True, False]


def test_id_positions_finds_each_id_and_names_unknown_ones() -> None:
    sorted_ids = np.array([3, 7, 20, 41], dtype=np.int32)

    assert id_positions(sorted_ids, [41, 3, 20, 20], "post").tolist() == [3, 0, 2, 2]
    with pytest.raises(KeyError, match=r"unknown user ids, e\.g\. \[8, 99\]"):
        id_positions(sorted_ids, [7, 8, 99], "user")
    with pytest.raises(KeyError, match="unknown post ids"):
        id_positions(sorted_ids[:0], [3], "post")
