"""What the API would answer each user, read on Redis Cluster the way the API serves there.

On a cluster the serving script runs on the user's slot with the user's two keys, and a short answer is topped up
from the popular list in a second step (:mod:`common.cluster_serving`). Scripts cannot go through redis-py's
cluster pipeline, so users are grouped by the master that holds their keys and each master gets pipelines of
EVALSHA, then one pipeline of SMISMEMBER for the answers that ran short.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import redis

from batch.ranking.topk import NO_POST
from common.cluster_serving import USER_SLOT_KEYS, top_up, top_up_candidates, user_slot_call
from common.keys import KeyLayout
from common.redis_nodes import node_groups
from common.serving import RECOMMEND_LUA

READ_BATCH: Final = 1000


def read_served_across_slots(
    client: redis.Redis[bytes], keys: KeyLayout, version: str, user_ids: npt.NDArray[np.int64], limit: int
) -> npt.NDArray[np.int64]:
    """(users x limit) post ids as the API on a cluster would answer, NO_POST padded."""
    popular = client.lrange(keys.popular(version), 0, -1)
    users = user_ids.tolist()
    served = np.full((len(users), limit), NO_POST, dtype=np.int64)
    for group in node_groups(client, [keys.liked(user) for user in users]):
        sha = str(group.client.script_load(RECOMMEND_LUA))  # type: ignore[no-untyped-call]
        for start in range(0, len(group.positions), READ_BATCH):
            rows = group.positions[start : start + READ_BATCH]
            answers = _answers(group.client, sha, keys, version, [users[row] for row in rows], limit, popular)
            for row, posts in zip(rows, answers, strict=True):
                served[row, : len(posts)] = [int(post) for post in posts]
    return served


def _answers(
    node: redis.Redis[bytes],
    sha: str,
    keys: KeyLayout,
    version: str,
    users: Sequence[int],
    limit: int,
    popular: Sequence[bytes],
) -> list[list[bytes]]:
    with node.pipeline(transaction=False) as pipe:
        for user in users:
            script_keys, argv = user_slot_call(keys, version, user, limit)
            pipe.evalsha(sha, USER_SLOT_KEYS, *script_keys, *argv)
        answers: list[list[bytes]] = [list(reply or []) for reply in pipe.execute()]
    # Users without a list (nil) get nothing, as from the script on one Redis; short answers get the top-up.
    short = [i for i, answer in enumerate(answers) if 0 < len(answer) < limit]
    candidates = {i: top_up_candidates(answers[i], popular) for i in short}
    asked = [i for i in short if candidates[i]]
    with node.pipeline(transaction=False) as pipe:
        for i in asked:
            pipe.smismember(keys.liked(users[i]), candidates[i])  # type: ignore[no-untyped-call]
        for i, liked in zip(asked, pipe.execute() if asked else [], strict=True):
            answers[i] = top_up(answers[i], candidates[i], liked, limit)
    return answers
