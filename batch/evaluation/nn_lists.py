"""The ``nn`` row of the evaluation: the neural sequence model alone, ranking each user's unseen posts.

It is the same model the ``test`` model reads as its ``nn_score`` feature at T (trained on data before T only), so
the row shows what the sequence score knows by itself. Like the seen-aware baselines, it never recommends a post
the user viewed or liked before T.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.embed_features import UserPostSpace
from batch.pipeline.nn_feature import NN_SCORE
from batch.pipeline.prepared import Prepared
from batch.ranking.positions import csr_entries
from batch.ranking.topk import NO_POST, top_k

NN: Final = "nn"
BLOCK_USERS: Final = 2048
IntMatrix = npt.NDArray[np.int64]


def nn_space_of(prepared: Prepared) -> UserPostSpace | None:
    """The sequence model's space at as_of, None when the build went without it (``--no-nn-feature``, no torch)."""
    embedding = prepared.features.embeddings.get(Cutoff.SCORE)
    spaces = embedding.spaces if embedding is not None else ()
    return next((space for space in spaces if space.name == NN_SCORE), None)


def nn_rankings(prepared: Prepared, user_ids: npt.NDArray[np.int64], k: int) -> dict[str, IntMatrix]:
    """``{"nn": (users x k) post ids}``, :data:`NO_POST` padded; empty when the build has no sequence model."""
    space = nn_space_of(prepared)
    if space is None:
        return {}
    features = prepared.score_features
    positions = features.user_positions(user_ids)
    k = min(k, features.post_ids.size)
    rows = []
    for start in range(0, positions.size, BLOCK_USERS):
        block = positions[start : start + BLOCK_USERS]
        scores = space.score_block(features.user_ids[block], features.post_ids)
        seen = ((features.viewed_indptr, features.viewed_posts), (features.liked_indptr, features.liked_posts))
        for indptr, indices in seen:
            owners, columns = csr_entries(indptr, indices, block)
            scores[owners, columns.astype(np.int64)] = -np.inf
        best = top_k(scores, k)
        found = np.isfinite(np.take_along_axis(scores, best, axis=1))
        rows.append(np.where(found, features.post_ids[best], NO_POST).astype(np.int64))
    return {NN: np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)}
