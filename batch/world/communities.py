"""The ``collab`` world's users: communities that share their tastes for hidden groups of posts.

Each user belongs to one community (sizes falling off by rank, membership leaning a little on demographics); a
community has a taste logit for every group, and a user's taste is its community's plus a small individual part.
Users of a community therefore like the same posts, which co-like models can see and text models cannot: the
groups are drawn apart from the texts (:func:`batch.world.groups.hidden_grouping`).
"""

from __future__ import annotations

import numpy as np

from batch.world.designs import Communities
from batch.world.dist import FloatArray, IntArray, zipf_weights


def community_membership(rng: np.random.Generator, features: FloatArray, communities: Communities) -> IntArray:
    """The community of each user: by size, tilted by demographics (Gumbel-max sampling)."""
    sizes = zipf_weights(communities.count, communities.size_exponent)
    coefs = rng.normal(0, communities.demographic_sd, (communities.count, features.shape[1]))
    logits = np.log(sizes)[None, :] + features @ coefs.T
    return np.asarray(np.argmax(logits + rng.gumbel(size=logits.shape), axis=1), dtype=np.int64)


def community_group_taste(
    rng: np.random.Generator, features: FloatArray, groups: int, communities: Communities
) -> FloatArray:
    """Users x groups taste logits: the community's profile plus an individual part."""
    membership = community_membership(rng, features, communities)
    profile = rng.normal(0, communities.profile_sd, (communities.count, groups))
    individual = rng.normal(0, communities.individual_sd, (len(features), groups))
    return np.asarray(profile[membership] + individual)
