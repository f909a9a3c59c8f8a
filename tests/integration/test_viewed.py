"""The shown-posts CSRs of several cutoffs from one scan of a real feed table."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy.engine import Engine

from batch.pipeline.viewed import load_viewed
from tests.integration.test_extract import USERS, insert

POSTS = [(1, "one", "business"), (2, "two", "movie"), (3, "three", "covid")]
FEED = [
    ("2021-10-01 06:00:00", 200, 1, "view", 0),
    ("2021-10-01 06:00:00", 200, 2, "like", None),  # a like is not a view
    ("2021-10-02 00:00:00", 201, 2, "view", 1),  # exactly at the first cutoff: shown before the later ones only
    ("2021-10-02 09:00:00", 201, 1, "view", 0),
    ("2021-10-03 12:00:00", 201, 1, "view", 0),  # shown again later: still first shown before the second cutoff
    ("2021-10-04 00:00:00", 200, 3, "view", 0),  # at the last cutoff: never counted
]
FIRST, SECOND, LAST = datetime(2021, 10, 2), datetime(2021, 10, 3), datetime(2021, 10, 4)


def shown(indptr: np.ndarray, posts: np.ndarray) -> list[tuple[int, int]]:
    users, post_ids = [200, 201], [1, 2, 3]
    return [(users[u], post_ids[p]) for u in range(indptr.size - 1) for p in posts[indptr[u] : indptr[u + 1]]]


def test_each_cutoff_sees_the_views_strictly_before_it_whatever_order_the_cutoffs_come_in(engine: Engine) -> None:
    insert(engine, USERS, POSTS, FEED)
    user_ids, post_ids = np.array([200, 201], dtype=np.int32), np.array([1, 2, 3], dtype=np.int32)

    last, first, second = load_viewed(engine, user_ids, post_ids, [LAST, FIRST, SECOND])

    assert shown(*first) == [(200, 1)]
    assert shown(*second) == [(200, 1), (201, 1), (201, 2)]
    assert shown(*last) == shown(*second)
    assert load_viewed(engine, user_ids, post_ids, []) == []
