"""Ranked lists of posts per user, and how they are cut from a score matrix: the shape every recommender (the
models, the baselines, the oracle) hands to publishing and to the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]
IndexArray = npt.NDArray[np.int64]
NO_POST: Final = -1


@dataclass(frozen=True, slots=True)
class TopK:
    """The best posts of some users, best first.

    Attributes:
        user_ids: (users,) the users, in the order asked for.
        post_ids: (users x k) post ids; :data:`NO_POST` pads a user with fewer than k unliked posts.
        scores: (users x k) the model's raw scores; -inf where the post id is :data:`NO_POST`.
    """

    user_ids: IntArray
    post_ids: IntArray
    scores: FloatArray

    def lists(self) -> Iterator[tuple[int, list[int]]]:
        """(user id, post ids without padding) per user."""
        for user_id, row in zip(self.user_ids.tolist(), self.post_ids, strict=True):
            yield user_id, row[row != NO_POST].tolist()


def sortable_keys(scores: FloatArray) -> npt.NDArray[np.int64]:
    """Unique int64 keys ordering (score desc, then position asc) as larger-is-better.

    The float32 score's bits are mapped to an int32 of the same order, placed above the inverted column position,
    so ties are broken deterministically by the smaller post id (posts are sorted by id).
    """
    bits = (scores + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into 0.0, so the two tie
    ordered = (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).astype(np.int64)
    positions = np.arange(scores.shape[1], dtype=np.int64)
    keys: npt.NDArray[np.int64] = (ordered << 32) | (np.int64(0xFFFFFFFF) - positions)
    return keys


def top_k(scores: FloatArray, k: int) -> IndexArray:
    """Column positions of each row's k best scores, best first (ties: smaller position first)."""
    n_columns = scores.shape[1]
    k = min(k, n_columns)
    keys = sortable_keys(scores)
    if k < n_columns:
        candidates = np.argpartition(keys, n_columns - k, axis=1)[:, n_columns - k :]
    else:
        candidates = np.broadcast_to(np.arange(n_columns), keys.shape)
    order = np.argsort(-np.take_along_axis(keys, candidates, axis=1), axis=1)
    best: IndexArray = np.take_along_axis(candidates, order, axis=1)
    return best


def merge_top(parts: list[TopK]) -> TopK:
    """One TopK of several (e.g. the A/B groups'), rows ordered by user id."""
    user_ids = np.concatenate([part.user_ids for part in parts])
    order = np.argsort(user_ids, kind="stable")
    return TopK(
        user_ids=user_ids[order],
        post_ids=np.concatenate([part.post_ids for part in parts])[order],
        scores=np.concatenate([part.scores for part in parts])[order],
    )
