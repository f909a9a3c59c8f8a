"""What one model reads at one cutoff: the base features of :mod:`batch.pipeline.features`, then the columns the
model adds on top (``test``: the embedding features), as one float32 matrix for arbitrary pairs or for a block of
users against every post."""

from __future__ import annotations

from dataclasses import dataclass

from batch.pipeline.embed_features import EmbeddingFeatureSet
from batch.pipeline.features import FEATURE_NAMES, FeatureSet, FloatArray, block_matrix, pair_matrix
from batch.ranking.positions import IndexArray


@dataclass(frozen=True, slots=True)
class ModelInputs:
    """One model's inputs at one cutoff.

    Attributes:
        features: The base features (every model reads them).
        embedding: The ``test`` model's embedding features at the same cutoff; None for ``control``.
    """

    features: FeatureSet
    embedding: EmbeddingFeatureSet | None = None

    @property
    def names(self) -> list[str]:
        """Column names of the matrices, in order."""
        return [*FEATURE_NAMES, *(self.embedding.names if self.embedding is not None else ())]

    @property
    def added_columns(self) -> int:
        """Columns after the base features."""
        return len(self.names) - len(FEATURE_NAMES)

    def pair_matrix(self, users: IndexArray, posts: IndexArray, moments: FloatArray) -> FloatArray:
        """(pairs x :attr:`names`) of arbitrary (user position, post position) pairs with their time features."""
        matrix = pair_matrix(self.features, users, posts, moments, self.added_columns)
        if self.embedding is not None:
            user_ids, post_ids = self.features.user_ids[users], self.features.post_ids[posts]
            matrix[:, len(FEATURE_NAMES) :] = self.embedding.pair_matrix(user_ids, post_ids)
        return matrix

    def block_matrix(self, users: IndexArray, moment: FloatArray) -> FloatArray:
        """(users * posts x :attr:`names`): every post for each of the user positions, user-major."""
        matrix = block_matrix(self.features, users, moment, self.added_columns)
        if self.embedding is not None:
            out = matrix[:, len(FEATURE_NAMES) :]
            self.embedding.fill_block(out, self.features.user_ids[users], self.features.post_ids)
        return matrix

    def for_users(self, features: FeatureSet) -> ModelInputs:
        """The same added columns over another feature set (e.g. one shard's or one user's)."""
        return ModelInputs(features, self.embedding)
