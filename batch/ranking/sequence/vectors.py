"""A trained sequence model as vectors: a user's state after its last event before the cutoff, and each post's
embedding with its bias, so that their dot product is the model's score of that post as the user's next like.

Plain numpy (no torch), so what holds or ranks with the vectors imports on the lean install too; ``readout`` makes
them from a model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from batch.ranking.positions import IdArray

FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SequenceVectors:
    """Users and posts in one space; ``user_vectors @ post_vectors.T`` is the model's score.

    Attributes:
        user_ids: Sorted user ids, the rows of ``user_vectors``.
        user_vectors: (users x dim + 1) float32: the state after the last event, then 1 (the bias's weight). A user
            without events has a zero state, so it scores posts by their bias alone.
        post_ids: Sorted post ids, the rows of ``post_vectors``.
        post_vectors: (posts x dim + 1) float32: the post's embedding, then its bias.
    """

    user_ids: IdArray
    user_vectors: FloatMatrix
    post_ids: IdArray
    post_vectors: FloatMatrix

    def scores(self, user_rows: npt.ArrayLike) -> FloatMatrix:
        """(users x posts) scores of the users at the given rows."""
        block: FloatMatrix = self.user_vectors[np.asarray(user_rows)] @ self.post_vectors.T
        return block
