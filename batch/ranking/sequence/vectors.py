"""A trained sequence model as vectors: a user's state after its last event before the cutoff, and each post's
embedding with its bias, so that their dot product is the model's score of that post as the user's next like.

Plain numpy (no torch), so what holds or ranks with the vectors imports on the lean install too; ``readout`` makes
them from a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from batch.ranking.positions import IdArray

FloatMatrix = npt.NDArray[np.float32]

# Below it a user's scores are all but equal over the catalog: they stay 0 rather than blow up.
SPREAD_FLOOR: Final = 1e-6


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

    def standardized(self, spreads: npt.NDArray[np.float64] | None = None) -> SequenceVectors:
        """The same space with each user's scores over the catalog at mean 0 and standard deviation 1.

        A model trained afresh at each cutoff puts its scores on a scale of its own, so a split learnt on the
        training cutoff's raw scores means another thing at as_of's; a user's z-scores keep the order of its posts
        and mean the same at every cutoff. Exact and cheap: ``(u · p - u · p̄) / s_u`` is the dot product of the
        user scaled by ``1 / s_u`` with the centred post, where ``s_u² = uᵀ C u`` for the posts' covariance ``C``.
        ``spreads``: the users' :meth:`score_spreads`, when the caller has them already.
        """
        centred = self._centred_posts()
        spread = self._spreads(centred) if spreads is None else spreads
        scale = np.divide(1.0, spread, out=np.zeros_like(spread), where=spread > SPREAD_FLOOR)
        users = self.user_vectors * scale[:, None].astype(np.float32)
        return SequenceVectors(self.user_ids, users, self.post_ids, np.ascontiguousarray(centred, dtype=np.float32))

    def score_spreads(self) -> npt.NDArray[np.float64]:
        """Per user, the standard deviation of its scores over the catalog."""
        return self._spreads(self._centred_posts())

    def _spreads(self, centred: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        covariance = centred.T @ centred / max(centred.shape[0], 1)
        users = self.user_vectors.astype(np.float64)
        variance = np.einsum("ij,jk,ik->i", users, covariance, users)
        spread: npt.NDArray[np.float64] = np.sqrt(np.maximum(variance, 0.0))
        return spread

    def _centred_posts(self) -> npt.NDArray[np.float64]:
        posts = self.post_vectors.astype(np.float64)
        centred: npt.NDArray[np.float64] = posts - posts.mean(axis=0)
        return centred
