"""The ``test`` model's embedding features on the wire, split like the feature set: the post side (post features,
post vectors of each user x post space, the text kNN's similarity) travels once, the user side (vectors, or the text
kNN's like weights) per shard (the users in its id range)."""

from __future__ import annotations

from dataclasses import asdict

import msgspec
import numpy as np
import scipy.sparse as sp

from batch.pipeline.embed import EmbeddingInfo
from batch.pipeline.embed_features import (
    EmbeddingFeatureSet,
    EmbedFeature,
    ScoreSpace,
    TextNeighbours,
    UserPostSpace,
    take_rows,
)
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
    """The shared arrays: post features and each space's post side."""
    arrays: Arrays = {"post_ids": extra.post_ids, "posts": extra.posts}
    for index, space in enumerate(extra.spaces):
        arrays[f"{index}:post_ids"] = space.post_ids
        if isinstance(space, TextNeighbours):
            arrays |= _csr_arrays(f"{index}:similar", space.similar)
        else:
            arrays[f"{index}:post_vectors"] = space.post_vectors
    return arrays


def extra_user_arrays(extra: EmbeddingFeatureSet, first_user: int, last_user: int) -> Arrays:
    """Each space's user side of the users with ids in ``first_user..last_user`` (one shard)."""
    arrays: Arrays = {}
    for index, space in enumerate(extra.spaces):
        rows = np.flatnonzero((space.user_ids >= first_user) & (space.user_ids <= last_user))
        arrays[f"{index}:user_ids"] = space.user_ids[rows]
        if isinstance(space, TextNeighbours):
            arrays |= _csr_arrays(f"{index}:weights", space.weights[rows])
        else:
            arrays[f"{index}:user_vectors"] = take_rows(space.user_vectors, rows)
    return arrays


def _csr_arrays(prefix: str, matrix: sp.csr_matrix) -> Arrays:
    return {
        f"{prefix}:data": matrix.data,
        f"{prefix}:indices": matrix.indices,
        f"{prefix}:indptr": matrix.indptr,
        f"{prefix}:shape": np.array(matrix.shape, dtype=np.int64),
    }


def _csr_of(prefix: str, arrays: Arrays) -> sp.csr_matrix:
    shape = tuple(int(size) for size in arrays[f"{prefix}:shape"])
    parts = (arrays[f"{prefix}:data"], arrays[f"{prefix}:indices"], arrays[f"{prefix}:indptr"])
    return sp.csr_matrix(parts, shape=shape)


def _shard_space(name: str, index: int, posts: Arrays, users: Arrays) -> ScoreSpace:
    """One space of a shard from its arrays: the text kNN by its name, any other a vector space."""
    user_ids, post_ids = users[f"{index}:user_ids"], posts[f"{index}:post_ids"]
    if name == EmbedFeature.TEXT_KNN:
        weights, similar = _csr_of(f"{index}:weights", users), _csr_of(f"{index}:similar", posts)
        return TextNeighbours(name, user_ids, weights, post_ids, similar)  # type: ignore[arg-type]
    return UserPostSpace(
        name=name,
        user_ids=user_ids,  # type: ignore[arg-type]
        user_vectors=users[f"{index}:user_vectors"],  # type: ignore[arg-type]
        post_ids=post_ids,  # type: ignore[arg-type]
        post_vectors=posts[f"{index}:post_vectors"],  # type: ignore[arg-type]
    )


def shard_extra(layout: ExtraLayout, posts: Arrays, users: Arrays) -> EmbeddingFeatureSet:
    """The embedding features of one shard's users, from :func:`extra_post_arrays` and :func:`extra_user_arrays`."""
    spaces = tuple(_shard_space(name, index, posts, users) for index, name in enumerate(layout.spaces))
    return EmbeddingFeatureSet(
        info=EmbeddingInfo(**layout.info),  # type: ignore[arg-type]
        post_ids=posts["post_ids"],  # type: ignore[arg-type]
        posts=posts["posts"],  # type: ignore[arg-type]
        post_names=tuple(layout.post_names),
        spaces=spaces,
    )
