"""The shard inputs of a version made by ``postrec build`` or ``postrec score``, staged when first needed.

A refresh leaves its model, encoders and feature arrays in Redis under its version, and ``refresh_user`` reads
them. ``build`` and ``score`` publish only the lists, so the first ``refresh_user`` on such a version stages the same
inputs: the version's models from their artifact under ``<data_dir>/models/`` (on the machine that built it), and
the features at the version's ``as_of`` recomputed as ``postrec score`` does. That first call takes as long as a
rescore's feature steps; the inputs then last as long as the version, and later calls read them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime

import redis
from sqlalchemy.engine import Engine

from batch.pipeline.artifacts import MissingArtifactError, load_artifact, models_dir
from batch.pipeline.build import prepare_rescore
from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.options import BuildOptions
from batch.pipeline.prepared import Models, Prepared
from common.ab import TEST
from common.errors import WorkerJobError
from common.keys import KeyLayout
from common.payloads import VersionMeta
from common.settings import Settings
from worker import staging
from worker.staging import RefreshPlan

log = logging.getLogger(__name__)


def load_or_stage_plan(
    client: redis.Redis[bytes], settings: Settings, engine: Engine, version: str, ttl_s: int
) -> RefreshPlan:
    """The plan of a published version, staging its inputs first when ``build`` or ``score`` made it.

    Args:
        client: Redis client of the serving store.
        settings: The deployment's settings.
        engine: Engine on the source database.
        version: The published version.
        ttl_s: How long staged inputs live should the version be deleted while they are written.

    Raises:
        MissingArtifactError: The version's model artifact is not on this machine.
        WorkerJobError: The version's meta is gone or names no model.
    """
    keys = KeyLayout(settings.prefix)
    if staging.has_plan(client, keys, version):
        return staging.load_plan(client, keys, version)
    return stage_built_version(client, settings, engine, version, ttl_s)


def stage_built_version(
    client: redis.Redis[bytes], settings: Settings, engine: Engine, version: str, ttl_s: int
) -> RefreshPlan:
    """Write a published version's shard inputs and plan, as its refresh would have; its lists stay as they are.

    The inputs are written with a TTL, then kept (like a refresh's when its version goes live), so a version
    deleted meanwhile leaves nothing behind for good.
    """
    keys = KeyLayout(settings.prefix)
    raw_meta = client.hgetall(keys.meta(version))
    if not raw_meta:
        raise WorkerJobError(f"version {version} has no meta (deleted?): run `postrec refresh --user` again")
    meta = VersionMeta.from_hash(raw_meta)
    models = load_version_models(settings, meta)
    options = BuildOptions.from_settings(settings, as_of=datetime.fromisoformat(meta.as_of), publish=False)
    prepared = prepare_rescore(settings, engine, options, models)
    plan = _stage(client, keys, version, prepared, settings.shard_users, ttl_s)
    if client.exists(keys.meta(version)):
        staging.keep_inputs(client, keys, version)
    log.info("inputs staged for a built version: version=%s users=%d shards=%d", version, plan.users, plan.shards)
    return plan


def load_version_models(settings: Settings, meta: VersionMeta) -> Models:
    """The models a version was scored with, from their artifact on this machine.

    Raises:
        MissingArtifactError: No artifact of that model version under ``<data_dir>/models/``.
        WorkerJobError: The meta names no model.
    """
    trained = {group: name for group, name in meta.models.items() if group != "embedding"}
    if not trained:
        raise WorkerJobError(f"version {meta.version} names no model in its meta: run `postrec refresh`")
    path = models_dir(settings.data_dir) / next(iter(trained.values()))
    try:
        artifact = load_artifact(path)
    except MissingArtifactError as exc:
        raise MissingArtifactError(
            f"version {meta.version} was made by `postrec build` or `score`, and its model is not on this machine"
            f" ({exc}): run this worker where it was built (same POSTREC_DATA_DIR), or run `postrec refresh`"
            " to make a version whose inputs live in Redis"
        ) from None
    return Models.from_saved(
        artifact.models, artifact.version, artifact.encoders, dict(meta.metrics), artifact.metadata
    )


def _stage(
    client: redis.Redis[bytes], keys: KeyLayout, version: str, prepared: Prepared, shard_users: int, ttl_s: int
) -> RefreshPlan:
    features, groups = prepared.score_features, prepared.models.by_group
    embedding = prepared.inputs(TEST).embedding if TEST in groups else None
    encoders = prepared.models.encoders.to_json()
    collab = prepared.features.collab.get(Cutoff.SCORE)
    first_users = staging.stage_inputs(
        client, keys, version, groups, encoders, features, embedding, shard_users, ttl_s, collab
    )
    plan = RefreshPlan(
        version=version,
        meta={key.decode(): value.decode() for key, value in client.hgetall(keys.meta(version)).items()},
        models=sorted(groups),
        embed_params=asdict(prepared.models.embed_params) if embedding is not None else {},
        collab_params=asdict(prepared.models.collab_params),
        shard_first_users=first_users,
        users=int(features.user_ids.size),
        posts=int(client.hlen(keys.posts(version))),
        popular=int(client.llen(keys.popular(version))),
    )
    staging.save_plan(client, keys, plan, ttl_s)
    return plan
