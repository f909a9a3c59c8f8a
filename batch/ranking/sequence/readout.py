"""Reading a trained model out: every user's state after its last event, and every post's vector with its bias."""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

from batch.ranking.sequence.histories import Histories
from batch.ranking.sequence.model import SequenceModel
from batch.ranking.sequence.vectors import FloatMatrix, SequenceVectors

# Users per forward pass. 2,048 left the heap 700 MB larger after 30,000 users (freed but fragmented); 256 left
# 165 MB and took a quarter less CPU.
ENCODE_BATCH: Final = 256


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
