"""What one model reads at one cutoff: the base features of :mod:`batch.pipeline.features`, the collaborative
features both models read, then the columns a model adds on top (``test``: the embedding features), as one float32
matrix for arbitrary pairs or for a block of users against every post."""

from __future__ import annotations

from dataclasses import dataclass

from batch.pipeline.collab_features import CollabModel
from batch.pipeline.embed_features import EmbeddingFeatureSet
from batch.pipeline.features import FEATURE_NAMES, FeatureSet, FloatArray, block_matrix, pair_matrix
from batch.ranking.positions import IndexArray


@dataclass(frozen=True, slots=True)
class ModelInputs:
    """One model's inputs at one cutoff.

    Attributes:
        features: The base features (every model reads them).
        embedding: The ``test`` model's embedding features at the same cutoff; None for ``control``.
        collab: The collaborative features' post side at the same cutoff (both models); None for a model trained
            without them.
    """

    features: FeatureSet
    embedding: EmbeddingFeatureSet | None = None
    collab: CollabModel | None = None

    @property
    def names(self) -> list[str]:
        """Column names of the matrices, in order."""
        collab = self.collab.names if self.collab is not None else ()
        embedding = self.embedding.names if self.embedding is not None else ()
        return [*FEATURE_NAMES, *collab, *embedding]

    @property
    def added_columns(self) -> int:
        """Columns after the base features."""
        return len(self.names) - len(FEATURE_NAMES)

    @property
    def _embedding_start(self) -> int:
        return len(FEATURE_NAMES) + (len(self.collab.names) if self.collab is not None else 0)

    def pair_matrix(
        self, users: IndexArray, posts: IndexArray, moments: FloatArray, collab_columns: FloatArray | None = None
    ) -> FloatArray:
        """(pairs x :attr:`names`) of arbitrary (user position, post position) pairs with their time features.

        ``collab_columns``: the pairs' collaborative columns computed already (training rows read them from each
        row's own history, see :func:`batch.pipeline.train.own_history_columns`); None computes them from the
        feature set's history at its cutoff.
        """
        matrix = pair_matrix(self.features, users, posts, moments, self.added_columns)
        if self.collab is not None:
            if collab_columns is None:
                collab_columns = self.collab.pair_matrix(self.features, users, posts)
            matrix[:, len(FEATURE_NAMES) : self._embedding_start] = collab_columns
        if self.embedding is not None:
            user_ids, post_ids = self.features.user_ids[users], self.features.post_ids[posts]
            matrix[:, self._embedding_start :] = self.embedding.pair_matrix(user_ids, post_ids)
        return matrix

    def block_matrix(self, users: IndexArray, moment: FloatArray) -> FloatArray:
        """(users * posts x :attr:`names`): every post for each of the user positions, user-major."""
        matrix = block_matrix(self.features, users, moment, self.added_columns)
        if self.collab is not None:
            self.collab.fill_block(matrix[:, len(FEATURE_NAMES) : self._embedding_start], self.features, users)
        if self.embedding is not None:
            out = matrix[:, self._embedding_start :]
            self.embedding.fill_block(out, self.features.user_ids[users], self.features.post_ids)
        return matrix

    def for_users(self, features: FeatureSet) -> ModelInputs:
        """The same added columns over another feature set (e.g. one shard's or one user's)."""
        return ModelInputs(features, self.embedding, self.collab)
