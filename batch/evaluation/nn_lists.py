"""The ``nn`` row of the evaluation: the neural sequence model alone, ranking each user's unseen posts.

It is the same model the ``test`` model reads as its ``nn_score`` feature at T (trained on data before T only), so
the row shows what the sequence score knows by itself. It goes through the seen-aware recommenders' seen filter and
top-k cut (:class:`batch.ranking.sequence.recommender.SequenceRecommender`), so it never recommends a post the user
viewed or liked before T.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from batch.evaluation.baseline_lists import ranked_post_ids
from batch.pipeline.benchmark import interactions_at
from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.embed_features import UserPostSpace, take_rows
from batch.pipeline.nn_feature import NN_SCORE
from batch.pipeline.prepared import Prepared
from batch.ranking.sequence.recommender import SequenceRecommender
from batch.ranking.sequence.vectors import SequenceVectors

NN: Final = "nn"
IntMatrix = npt.NDArray[np.int64]


def nn_space_of(prepared: Prepared) -> UserPostSpace | None:
    """The sequence model's space at as_of, None when the build went without it (``--no-nn-feature``, no torch)."""
    embedding = prepared.features.embeddings.get(Cutoff.SCORE)
    spaces = embedding.spaces if embedding is not None else ()
    return next((space for space in spaces if isinstance(space, UserPostSpace) and space.name == NN_SCORE), None)


def nn_rankings(prepared: Prepared, user_ids: npt.NDArray[np.int64], k: int) -> dict[str, IntMatrix]:
    """``{"nn": (users x k) post ids}``, ``NO_POST`` padded; empty when the build has no sequence model."""
    space = nn_space_of(prepared)
    if space is None:
        return {}
    users = take_rows(space.user_vectors, np.arange(space.user_ids.size))
    recommender = SequenceRecommender(SequenceVectors(space.user_ids, users, space.post_ids, space.post_vectors))
    interactions = interactions_at(prepared.score_features, prepared.source.likes)
    recommender.fit(interactions)
    return {NN: ranked_post_ids(recommender, interactions, interactions.user_positions(user_ids), k)}
