"""Splitting a feature set into user shards, and putting a shard back together, as plain arrays.

The post side of a feature set (post ids, post features, topics) is shared by every shard and travels once; the
user side (user rows, user x topic rows, the liked-posts CSR) is cut into contiguous runs of users, so each shard
job reads only its own users' rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from batch.pipeline.features import FeatureSet

Arrays = dict[str, npt.NDArray[np.generic]]
CUTOFF = "cutoff_us"
LIKE_PRIOR = "like_prior"
# Cutoffs are naive (the feed's timestamps have no zone): counted from a naive epoch, never through local time.
EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)


def shard_bounds(users: int, shard_users: int) -> list[tuple[int, int]]:
    """``[start, stop)`` user positions of each shard: consecutive runs of at most ``shard_users`` users.

    Args:
        users: How many users there are.
        shard_users: Users per shard (the last shard may hold fewer).
    """
    return [(start, min(start + shard_users, users)) for start in range(0, users, max(shard_users, 1))]


def post_arrays(features: FeatureSet) -> Arrays:
    """The shared, post-side arrays of a feature set, with its cutoff and its like prior."""
    cutoff = np.array([(features.cutoff - EPOCH) // MICROSECOND], dtype=np.int64)
    arrays: Arrays = {
        CUTOFF: cutoff,
        "post_ids": features.post_ids,
        "posts": features.posts,
        "post_topics": features.post_topics,
        LIKE_PRIOR: np.array([features.like_prior], dtype=np.float64),
    }
    return arrays


def user_arrays(features: FeatureSet, start: int, stop: int) -> Arrays:
    """The user-side arrays of users ``start..stop-1``; the liked and viewed CSRs are rebased to start at 0."""
    first, last = features.liked_indptr[start], features.liked_indptr[stop]
    seen_first, seen_last = features.viewed_indptr[start], features.viewed_indptr[stop]
    return {
        "user_ids": features.user_ids[start:stop],
        "users": features.users[start:stop],
        "user_topics": features.user_topics[start:stop],
        "liked_indptr": features.liked_indptr[start : stop + 1] - first,
        "liked_posts": features.liked_posts[first:last],
        "viewed_indptr": features.viewed_indptr[start : stop + 1] - seen_first,
        "viewed_posts": features.viewed_posts[seen_first:seen_last],
        "last_like_days": features.last_like_days[start:stop],
    }


def shard_features(posts: Arrays, users: Arrays) -> FeatureSet:
    """A feature set holding one shard's users against every post, from :func:`post_arrays` and
    :func:`user_arrays`."""
    cutoff = EPOCH + int(posts[CUTOFF][0]) * MICROSECOND
    return FeatureSet(
        cutoff=cutoff,
        user_ids=users["user_ids"],  # type: ignore[arg-type]
        users=users["users"],  # type: ignore[arg-type]
        post_ids=posts["post_ids"],  # type: ignore[arg-type]
        posts=posts["posts"],  # type: ignore[arg-type]
        post_topics=posts["post_topics"],  # type: ignore[arg-type]
        user_topics=users["user_topics"],  # type: ignore[arg-type]
        liked_indptr=users["liked_indptr"],  # type: ignore[arg-type]
        liked_posts=users["liked_posts"],  # type: ignore[arg-type]
        viewed_indptr=users["viewed_indptr"],  # type: ignore[arg-type]
        viewed_posts=users["viewed_posts"],  # type: ignore[arg-type]
        like_prior=float(posts[LIKE_PRIOR][0]),
        last_like_days=users["last_like_days"],  # type: ignore[arg-type]
    )


def iter_shards(features: FeatureSet, shard_users: int) -> Iterator[Arrays]:
    """The user-side arrays of every shard, in order."""
    for start, stop in shard_bounds(features.user_ids.size, shard_users):
        yield user_arrays(features, start, stop)
