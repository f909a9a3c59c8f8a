"""The ``test`` model's embedding features on the wire, split like the feature set: the post side (post features,
post vectors of each user x post space) travels once, the user vectors per shard (the users in its id range)."""

from __future__ import annotations

from dataclasses import asdict

import msgspec
import numpy as np

from batch.pipeline.embed import EmbeddingInfo
from batch.pipeline.embed_features import EmbeddingFeatureSet, UserPostSpace, take_rows
from worker.shards import Arrays


class ExtraLayout(msgspec.Struct, frozen=True):
    """What the arrays do not say: how the embeddings were made, and the names of columns and spaces."""

    info: dict[str, str | int]
    post_names: list[str]
    spaces: list[str]


def extra_layout(extra: EmbeddingFeatureSet) -> ExtraLayout:
    """The layout of an embedding feature set."""
    return ExtraLayout(asdict(extra.info), list(extra.post_names), [space.name for space in extra.spaces])


def extra_post_arrays(extra: EmbeddingFeatureSet) -> Arrays:
    """The shared arrays: post features and each space's post vectors."""
    arrays: Arrays = {"post_ids": extra.post_ids, "posts": extra.posts}
    for index, space in enumerate(extra.spaces):
        arrays[f"{index}:post_ids"], arrays[f"{index}:post_vectors"] = space.post_ids, space.post_vectors
    return arrays


def extra_user_arrays(extra: EmbeddingFeatureSet, first_user: int, last_user: int) -> Arrays:
    """Each space's vectors of the users with ids in ``first_user..last_user`` (one shard)."""
    arrays: Arrays = {}
    for index, space in enumerate(extra.spaces):
        rows = np.flatnonzero((space.user_ids >= first_user) & (space.user_ids <= last_user))
        arrays[f"{index}:user_ids"] = space.user_ids[rows]
        arrays[f"{index}:user_vectors"] = take_rows(space.user_vectors, rows)
    return arrays


def shard_extra(layout: ExtraLayout, posts: Arrays, users: Arrays) -> EmbeddingFeatureSet:
    """The embedding features of one shard's users, from :func:`extra_post_arrays` and :func:`extra_user_arrays`."""
    spaces = tuple(
        UserPostSpace(
            name=name,
            user_ids=users[f"{index}:user_ids"],  # type: ignore[arg-type]
            user_vectors=users[f"{index}:user_vectors"],  # type: ignore[arg-type]
            post_ids=posts[f"{index}:post_ids"],  # type: ignore[arg-type]
            post_vectors=posts[f"{index}:post_vectors"],  # type: ignore[arg-type]
        )
        for index, name in enumerate(layout.spaces)
    )
    return EmbeddingFeatureSet(
        info=EmbeddingInfo(**layout.info),  # type: ignore[arg-type]
        post_ids=posts["post_ids"],  # type: ignore[arg-type]
        posts=posts["posts"],  # type: ignore[arg-type]
        post_names=tuple(layout.post_names),
        spaces=spaces,
    )
