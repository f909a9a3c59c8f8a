"""A sharded refresh's state in Redis, under its version's keys: the plan, the inputs shards read, and the record
of every shard that landed.

Inputs expire after a TTL, so a refresh abandoned without clean-up never leaves them for good; a version that
goes live keeps its models, encoders and features (for ``rescore`` and ``refresh_user``) until it is deleted.
"""

from __future__ import annotations

from typing import Final

import catboost
import msgspec
import redis

from batch.pipeline.collab_features import CollabModel, collab_arrays, collab_from_arrays
from batch.pipeline.embed_features import EmbeddingFeatureSet
from batch.pipeline.features import FeatureSet
from common.ab import TEST
from common.keys import KeyLayout
from worker.extras import ExtraLayout, extra_layout, extra_post_arrays, extra_user_arrays, shard_extra
from worker.shards import Arrays, iter_shards, post_arrays, shard_features
from worker.transfer import decode_arrays, encode_arrays, get_blob, model_from_bytes, model_to_bytes, put_blob

PLAN: Final = "plan"
ENCODERS: Final = "encoders"
POSTS: Final = "posts"
EXTRA_LAYOUT: Final = "extra:layout"
EXTRA_POSTS: Final = "extra:posts"
COLLAB_POSTS: Final = "collab:posts"


def model_input(group: str) -> str:
    """Name of the model of an A/B group among a version's inputs."""
    return f"model:{group}"


def shard_input(shard: int) -> str:
    """Name of one shard's user-side arrays among a version's inputs."""
    return f"shard:{shard}"


def extra_shard_input(shard: int) -> str:
    """Name of one shard's user vectors of the embedding features among a version's inputs."""
    return f"extra:shard:{shard}"


class RefreshPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a refresh's final job checks before it makes the version live.

    Attributes:
        version: The new version's id.
        meta: Its metadata hash, but for ``users`` (counted from the shards); its salt and control percent split
            the users between the models.
        models: The A/B groups with a model, each scoring the users of its group.
        embed_params: Settings of the ``test`` model's embedding features (for ``rescore``); empty without it.
        collab_params: Settings of the collaborative features (for ``rescore``); empty in a plan saved before them.
        shard_first_users: The first user id of each shard, in order; its length is the shard count.
        users: Users scored over all shards.
        posts: Posts in the catalog written by the refresh job.
        popular: Length of the popular list written by the refresh job.
    """

    version: str
    meta: dict[str, str]
    models: list[str]
    embed_params: dict[str, bool | int | float | str] = msgspec.field(default_factory=dict)
    collab_params: dict[str, int | float] = msgspec.field(default_factory=dict)
    shard_first_users: list[int]
    users: int
    posts: int
    popular: int

    @property
    def shards(self) -> int:
        """How many shards the refresh was split into."""
        return len(self.shard_first_users)


class ShardCounts(msgspec.Struct, frozen=True):
    """What one shard wrote, as checked after writing.

    Attributes:
        users: Users the shard scored.
        with_list: Of those, users with a non-empty list.
        entries: Post ids written over all its lists.
    """

    users: int
    with_list: int
    entries: int


def stage_inputs(
    client: redis.Redis[bytes],
    keys: KeyLayout,
    version: str,
    models: dict[str, catboost.CatBoost],
    encoders_json: str,
    features: FeatureSet,
    embedding: EmbeddingFeatureSet | None,
    shard_users: int,
    ttl_s: int,
    collab: CollabModel | None,
) -> list[int]:
    """Store the models, encoders and feature arrays a refresh's shards read. Returns each shard's first user id.

    Args:
        client: Redis client of the serving store.
        keys: Key layout of the deployment.
        version: The new version.
        models: Model of each A/B group.
        encoders_json: The categorical encoders the models were trained with.
        features: The feature set at as_of.
        embedding: The ``test`` model's embedding features at as_of; None without a test model.
        shard_users: Users per shard.
        ttl_s: How long the inputs live unless the version goes live.
        collab: The collaborative features' post side at as_of (every model's); None for models without them.
    """
    for group, model in models.items():
        put_blob(client, keys.refresh_input(version, model_input(group)), model_to_bytes(model), ttl_s)
    put_blob(client, keys.refresh_input(version, ENCODERS), encoders_json.encode(), ttl_s)
    put_blob(client, keys.refresh_input(version, POSTS), encode_arrays(post_arrays(features)), ttl_s)
    if embedding is not None:
        layout = msgspec.json.encode(extra_layout(embedding))
        put_blob(client, keys.refresh_input(version, EXTRA_LAYOUT), layout, ttl_s)
        put_blob(client, keys.refresh_input(version, EXTRA_POSTS), encode_arrays(extra_post_arrays(embedding)), ttl_s)
    if collab is not None:  # the post side only: each shard's likes and views are in its feature arrays
        put_blob(client, keys.refresh_input(version, COLLAB_POSTS), encode_arrays(collab_arrays(collab)), ttl_s)
    first_users = []
    for shard, arrays in enumerate(iter_shards(features, shard_users)):
        put_blob(client, keys.refresh_input(version, shard_input(shard)), encode_arrays(arrays), ttl_s)
        first, last = int(arrays["user_ids"][0]), int(arrays["user_ids"][-1])
        if embedding is not None:
            vectors = encode_arrays(extra_user_arrays(embedding, first, last))
            put_blob(client, keys.refresh_input(version, extra_shard_input(shard)), vectors, ttl_s)
        first_users.append(first)
    return first_users


def save_plan(client: redis.Redis[bytes], keys: KeyLayout, plan: RefreshPlan, ttl_s: int) -> None:
    """Store the plan the final job checks against."""
    put_blob(client, keys.refresh_input(plan.version, PLAN), msgspec.json.encode(plan), ttl_s)


def has_plan(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> bool:
    """Whether the version has a refresh's plan (``build`` and ``score`` stage none)."""
    return bool(client.exists(keys.refresh_input(version, PLAN)))


def load_plan(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> RefreshPlan:
    """The plan of a refresh (raises WorkerJobError when it expired or was cleaned up)."""
    return msgspec.json.decode(get_blob(client, keys.refresh_input(version, PLAN)), type=RefreshPlan)


def load_models(client: redis.Redis[bytes], keys: KeyLayout, plan: RefreshPlan) -> dict[str, catboost.CatBoost]:
    """The models a version's lists were scored with, by A/B group."""
    return {
        group: model_from_bytes(get_blob(client, keys.refresh_input(plan.version, model_input(group))))
        for group in plan.models
    }


def load_encoders_json(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> str:
    """The categorical encoders (JSON) the version's model was trained with."""
    return get_blob(client, keys.refresh_input(version, ENCODERS)).decode()


def load_shard_features(client: redis.Redis[bytes], keys: KeyLayout, version: str, shard: int) -> FeatureSet:
    """The feature set of one shard's users against every post."""
    posts: Arrays = decode_arrays(get_blob(client, keys.refresh_input(version, POSTS)))
    users: Arrays = decode_arrays(get_blob(client, keys.refresh_input(version, shard_input(shard))))
    return shard_features(posts, users)


def load_shard_embedding(
    client: redis.Redis[bytes], keys: KeyLayout, plan: RefreshPlan, shard: int
) -> EmbeddingFeatureSet | None:
    """The embedding features of one shard's users; None when the version has no ``test`` model."""
    if TEST not in plan.models:
        return None
    layout = msgspec.json.decode(get_blob(client, keys.refresh_input(plan.version, EXTRA_LAYOUT)), type=ExtraLayout)
    posts = decode_arrays(get_blob(client, keys.refresh_input(plan.version, EXTRA_POSTS)))
    users = decode_arrays(get_blob(client, keys.refresh_input(plan.version, extra_shard_input(shard))))
    return shard_extra(layout, posts, users)


def load_collab(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> CollabModel | None:
    """The collaborative features' post side of a version; None when its models were trained without them."""
    key = keys.refresh_input(version, COLLAB_POSTS)
    if not client.exists(key):
        return None
    return collab_from_arrays(decode_arrays(get_blob(client, key)))


def record_shard(client: redis.Redis[bytes], keys: KeyLayout, version: str, shard: int, counts: ShardCounts) -> None:
    """Mark a shard as landed, with its counts."""
    client.hset(keys.shards_done(version), str(shard), msgspec.json.encode(counts))


def landed_shards(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> dict[int, ShardCounts]:
    """Every shard recorded as landed, by index."""
    raw = client.hgetall(keys.shards_done(version))
    return {int(shard): msgspec.json.decode(counts, type=ShardCounts) for shard, counts in raw.items()}


def keep_inputs(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> int:
    """Drop the TTL of a live version's inputs, so they last as long as the version. Returns keys kept."""
    pattern = keys.refresh_input(version, "*")
    return sum(bool(client.persist(key)) for key in client.scan_iter(match=pattern, count=1000))
