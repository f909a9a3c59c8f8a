"""The trained model read out as vectors: a user's state after its last event before the cutoff, and each post's
embedding with its bias, so that their dot product is the model's score of that post as the user's next like."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import torch

from batch.ranking.positions import IdArray
from batch.ranking.sequence.histories import Histories
from batch.ranking.sequence.model import SequenceModel

FloatMatrix = npt.NDArray[np.float32]
ENCODE_BATCH: Final = 2048


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


def read_vectors(model: SequenceModel, histories: Histories, threads: int) -> SequenceVectors:
    """Every user's state after its last event and every post's vector, in batches of :data:`ENCODE_BATCH` users."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        states = _last_states(model, histories)
    finally:
        torch.set_num_threads(previous)
    users = np.hstack([states, np.ones((states.shape[0], 1), dtype=np.float32)])
    with torch.no_grad():
        posts = torch.cat([model.posts.weight[1:], model.bias.weight[1:]], dim=1).numpy().astype(np.float32)
    return SequenceVectors(histories.user_ids, users, histories.post_ids, np.ascontiguousarray(posts))


def _last_states(model: SequenceModel, histories: Histories) -> FloatMatrix:
    model.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, histories.user_ids.size, ENCODE_BATCH):
            rows = slice(start, start + ENCODE_BATCH)
            arrays = (histories.posts[rows], histories.actions[rows], histories.gaps[rows])
            states = model(*(torch.from_numpy(np.ascontiguousarray(array)) for array in arrays))
            # A copy: a view of the last column would keep each batch's whole (users x length x dim) output alive.
            parts.append(states[:, -1].numpy().copy())
    dim = model.posts.embedding_dim
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, dim), dtype=np.float32)
