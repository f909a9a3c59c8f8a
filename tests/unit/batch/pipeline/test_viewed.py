"""The shown-posts CSRs cut per cutoff from streamed (user, post, bucket) rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import batch.pipeline.viewed
from batch.pipeline.viewed import BUCKET, ViewedPairs
from batch.ranking.positions import pairs_csr, position_dtype
from common.columns import Col

USER_IDS = np.array([3, 5, 8, 13], dtype=np.int32)
POST_IDS = np.array([10, 20, 30, 40, 50], dtype=np.int32)


def rows(triples: list[tuple[int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(triples, schema={Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32, BUCKET: pl.Int16}, orient="row")


def csr_pairs(indptr: np.ndarray, posts: np.ndarray) -> list[tuple[int, int]]:
    return [
        (int(USER_IDS[u]), int(POST_IDS[p])) for u in range(indptr.size - 1) for p in posts[indptr[u] : indptr[u + 1]]
    ]


def test_a_pair_counts_from_its_earliest_bucket_on_whichever_chunk_holds_it() -> None:
    viewed = ViewedPairs(USER_IDS, POST_IDS, cutoffs=3)
    viewed.add(rows([(5, 30, 2), (3, 10, 1), (13, 50, 0)]))
    viewed.add(rows([(5, 30, 0), (3, 10, 2), (5, 20, 1), (99, 10, 0), (3, 77, 0)]))  # repeats, an unknown user/post

    first, second, third = viewed.csrs()

    assert csr_pairs(*first) == [(5, 30), (13, 50)]
    assert csr_pairs(*second) == [(3, 10), (5, 20), (5, 30), (13, 50)]
    assert csr_pairs(*third) == csr_pairs(*second)
    assert first[1].dtype == np.int16 and first[0].dtype == np.int64 and first[0].size == USER_IDS.size + 1


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1 << 23])
def test_chunked_sorting_and_cutting_match_the_pairs_csr_of_each_cutoff(monkeypatch, step: int) -> None:
    monkeypatch.setattr(batch.pipeline.viewed, "STEP", step)
    rng = np.random.default_rng(step)
    triples = list(
        zip(
            rng.choice(USER_IDS, 60).tolist(),
            rng.choice(POST_IDS, 60).tolist(),
            rng.integers(0, 3, 60).tolist(),
            strict=True,
        )
    )
    viewed = ViewedPairs(USER_IDS, POST_IDS, cutoffs=3)
    for start in range(0, 60, 17):
        viewed.add(rows(triples[start : start + 17]))

    for bucket, (indptr, posts) in enumerate(viewed.csrs()):
        expected = pairs_csr(USER_IDS, POST_IDS, rows(triples).filter(pl.col(BUCKET) <= bucket))
        np.testing.assert_array_equal(indptr, expected[0])
        np.testing.assert_array_equal(posts, expected[1])


def test_nothing_added_gives_empty_rows_for_every_user() -> None:
    ((indptr, posts),) = ViewedPairs(USER_IDS, POST_IDS, cutoffs=1).csrs()
    assert indptr.tolist() == [0, 0, 0, 0, 0] and posts.size == 0


@pytest.mark.parametrize(
    ("count", "dtype"),
    [(1, np.int16), (7_023, np.int16), (32_768, np.int16), (32_769, np.int32), (2**31 + 1, np.int64)],
)
def test_positions_take_the_smallest_type_that_holds_them(count: int, dtype: type) -> None:
    assert position_dtype(count) == np.dtype(dtype)
