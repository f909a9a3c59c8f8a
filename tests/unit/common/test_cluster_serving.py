"""The cluster's two-step serving (script on the user's slot, then the popular top-up) gives the one-step answer."""

from __future__ import annotations

import random

import pytest

from api.ranking import first_unliked
from common.cluster_serving import top_up, top_up_candidates


def two_steps(ranked: list[int], liked: set[int], limit: int, popular: list[int]) -> list[int]:
    chosen = [str(post).encode() for post in first_unliked(ranked, liked, limit)]  # what the script returns
    candidates = top_up_candidates(chosen, [str(post).encode() for post in popular])
    flags = [int(int(post) in liked) for post in candidates]
    return [int(post) for post in top_up(chosen, candidates, flags, limit)]


@pytest.mark.parametrize("seed", range(200))
def test_two_steps_answer_as_the_script_does_on_one_redis(seed):
    rng = random.Random(seed)
    ranked = rng.sample(range(1, 40), rng.randint(0, 15))
    popular = [rng.randint(1, 40) for _ in range(rng.randint(0, 20))]  # repeats too
    liked = set(rng.sample(range(1, 40), rng.randint(0, 30)))
    limit = rng.randint(1, 12)

    assert two_steps(ranked, liked, limit, popular) == first_unliked(ranked, liked, limit, popular)
