"""What the sequence model learns to predict: at every position, the next post the user liked after it."""

from __future__ import annotations

import numpy as np

from batch.ranking.positions import IndexArray
from batch.ranking.sequence.histories import LIKED, PAD, Histories


def next_liked(histories: Histories) -> IndexArray:
    """(users x length) post token of the first liked event after each position; :data:`PAD` when none follows.

    Only tokens of the sequence itself are read, so targets never reach past the cutoff the histories were cut at.
    """
    targets = np.full(histories.posts.shape, PAD, dtype=np.int64)
    upcoming = np.full(histories.posts.shape[0], PAD, dtype=np.int64)
    for column in range(histories.length - 1, -1, -1):
        targets[:, column] = upcoming
        liked = histories.actions[:, column] == LIKED
        upcoming = np.where(liked, histories.posts[:, column], upcoming)
    return targets
