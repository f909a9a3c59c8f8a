"""The sharded refresh: the batch of ``postrec build`` split into RQ jobs that any worker on any machine can run.

1. ``refresh`` (one job): validate, extract, features, samples, train, evaluate (the batch's own steps); then the
   version's catalog and popular list, and the shards' inputs in Redis; then one ``score_shard`` job per shard
   and a ``finalize_version`` job that depends on all of them.
2. ``score_shard``: reads the model and its users' features from Redis, scores them against every post, writes
   their lists under the new version, counts them back, and records the shard as landed.
3. ``finalize_version``: once every shard has ended, makes the version live (the batch's atomic flip) if every
   shard landed and the counts match; otherwise deletes the version's keys and leaves the live version alone.

``rescore`` is step 1 with the live version's model on fresh features instead of training; ``refresh_user``
rescores one user of the live version on that user's data of now (see :mod:`worker.user_rows`).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Final, NoReturn

import catboost
import numpy as np
import redis
from rq.job import Dependency, Job
from sqlalchemy.engine import Engine

from batch.pipeline.build import prepare_rescore, prepare_version
from batch.pipeline.collab_features import CollabModel
from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.embed_features import EmbeddingFeatureSet
from batch.pipeline.features import Encoders, FeatureSet
from batch.pipeline.guard import check_publishable
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.options import BuildOptions
from batch.pipeline.prepared import Models, Prepared
from batch.pipeline.score import popular_order, score_users, split_users
from batch.pipeline.steps import step
from batch.publish.release import (
    CREATED_AT,
    delete_expired_versions,
    delete_version,
    expected_lengths,
    make_live,
    utc_now,
    version_meta,
    write_catalog,
    write_popular,
    write_rankings,
)
from batch.ranking.topk import TopK, merge_top
from common.ab import TEST
from common.errors import NoPublishedVersionError, UnknownUserError, WorkerJobError
from common.keys import KeyLayout
from common.payloads import VersionMeta
from common.settings import Settings
from worker import staging
from worker.built_versions import load_or_stage_plan
from worker.queues import enqueue_job
from worker.staging import RefreshPlan, ShardCounts
from worker.user_rows import load_user_rows, user_features_now

log = logging.getLogger(__name__)

USERS_PER_PIPELINE: Final = 5_000


def input_ttl_s(settings: Settings) -> int:
    """How long a refresh's inputs wait for its shards: every attempt of a shard, plus as long again queued."""
    return settings.refresh_timeout_seconds * (settings.job_retries + 2)


def prepare_refresh(
    settings: Settings, engine: Engine, client: redis.Redis[bytes], train: bool = True
) -> tuple[RefreshPlan, Prepared]:
    """Run the batch's steps up to scoring, then stage the new version for its shards.

    Args:
        settings: The deployment's settings.
        engine: Engine on the source database.
        client: Redis client of the serving store.
        train: Train a new model (``refresh``); False reuses the live version's model (``rescore``).

    Raises:
        WorseThanBaselineError: The new model is worse than the best baseline on validation (nothing is staged).

    Returns:
        The plan the final job checks, and the version prepared for scoring.
    """
    keys = KeyLayout(settings.prefix)
    options = BuildOptions.from_settings(settings)
    if train:
        prepared = prepare_version(settings, engine, options)
        check_publishable(prepared.benchmark, options.allow_worse)  # nothing staged: the live version stays
    else:
        prepared = prepare_rescore(settings, engine, options, load_live_models(client, keys))
    return stage_version(client, keys, prepared, settings), prepared


def load_live_models(client: redis.Redis[bytes], keys: KeyLayout) -> Models:
    """Step load live models: the live version's models, encoders, embedding settings and metrics, from Redis.

    Raises:
        NoPublishedVersionError: Nothing is live.
        WorkerJobError: The live version was not made by a refresh (it has no inputs in Redis).
    """
    with step("load live models") as done:
        live = live_version(client, keys)
        plan = staging.load_plan(client, keys, live)
        models = staging.load_models(client, keys, plan)
        encoders = Encoders.from_json(staging.load_encoders_json(client, keys, live))
        meta = VersionMeta.from_hash(client.hgetall(keys.meta(live)))
        version = meta.models.get(plan.models[0], live)
        done.rows = len(models)
    saved = {"embed_params": plan.embed_params, "collab_params": plan.collab_params}
    return Models.from_saved(models, version, encoders, dict(meta.metrics), saved)


def live_version(client: redis.Redis[bytes], keys: KeyLayout) -> str:
    """The live version's id.

    Raises:
        NoPublishedVersionError: Nothing is live.
    """
    raw = client.get(keys.current)
    if raw is None:
        raise NoPublishedVersionError("no live version: run `postrec refresh` (or `postrec build`) first")
    return raw.decode()


def stage_version(client: redis.Redis[bytes], keys: KeyLayout, prepared: Prepared, settings: Settings) -> RefreshPlan:
    """Write the new version's catalog and popular list, its shards' inputs and its plan."""
    version, features, ttl = prepared.source.version, prepared.score_features, input_ttl_s(settings)
    models = prepared.models.by_group
    client.hset(keys.meta(version), CREATED_AT, utc_now())  # an incomplete meta: the version is being written
    posts = write_catalog(client, keys, version, prepared.source.posts)
    popular = popular_order(features).tolist()
    write_popular(client, keys, version, popular)
    embedding = prepared.inputs(TEST).embedding if TEST in models else None
    encoders = prepared.models.encoders.to_json()
    collab = prepared.features.collab.get(Cutoff.SCORE)
    first_users = staging.stage_inputs(
        client, keys, version, models, encoders, features, embedding, settings.shard_users, ttl, collab
    )
    plan = RefreshPlan(
        version=version,
        meta=_meta(prepared, settings, posts),
        models=sorted(models),
        embed_params=asdict(prepared.models.embed_params) if embedding is not None else {},
        collab_params=asdict(prepared.models.collab_params),
        shard_first_users=first_users,
        users=int(features.user_ids.size),
        posts=posts,
        popular=len(popular),
    )
    staging.save_plan(client, keys, plan, ttl)
    log.info("refresh staged: version=%s users=%d shards=%d models=%s", version, plan.users, plan.shards, plan.models)
    return plan


def _meta(prepared: Prepared, settings: Settings, posts: int) -> dict[str, str]:
    meta = version_meta(
        version=prepared.source.version,
        as_of=prepared.source.as_of,
        settings=settings,
        models=prepared.models_meta(),
        k=settings.k,
        users=0,  # counted from the shards by the final job
        posts=posts,
        metrics=prepared.models.metrics,
        baselines=prepared.benchmark.baseline_hitrates if prepared.benchmark else None,
    )
    return meta.to_hash()


def enqueue_shards(connection: redis.Redis[bytes], settings: Settings, plan: RefreshPlan) -> Job:
    """One ``score_shard`` job per shard, and the final job that runs once every shard has ended, landed or not.

    Returns:
        The final job.
    """
    shard_jobs = [enqueue_job(connection, settings, "score_shard", plan.version, s) for s in range(plan.shards)]
    depends_on = Dependency(jobs=shard_jobs, allow_failure=True) if shard_jobs else None
    return enqueue_job(connection, settings, "finalize_version", plan.version, depends_on=depends_on)


def score_shard(client: redis.Redis[bytes], settings: Settings, version: str, shard: int) -> ShardCounts:
    """Score one shard's users, write their lists under the version, count them back and record the shard.

    Safe to run again (a retry after a crash or a killed worker): the shard's lists are replaced, not appended.

    Raises:
        WorkerJobError: The version's inputs are gone (abandoned or expired), or a list did not land whole.
    """
    keys = KeyLayout(settings.prefix)
    plan = staging.load_plan(client, keys, version)
    models = staging.load_models(client, keys, plan)
    features = staging.load_shard_features(client, keys, version, shard)
    embedding = staging.load_shard_embedding(client, keys, plan, shard)
    collab = staging.load_collab(client, keys, version)
    rankings = score_groups(plan, models, features, embedding, features.user_ids.tolist(), collab)
    delete_lists(client, keys, version, rankings.user_ids.tolist())
    write_rankings(client, keys, version, rankings)
    counts = check_lists(client, keys, version, rankings)
    staging.record_shard(client, keys, version, shard, counts)
    log.info("shard landed: version=%s shard=%d users=%d", version, shard, counts.users)
    return counts


def score_groups(
    plan: RefreshPlan,
    models: dict[str, catboost.CatBoost],
    features: FeatureSet,
    embedding: EmbeddingFeatureSet | None,
    user_ids: Sequence[int],
    collab: CollabModel | None = None,
) -> TopK:
    """The top K of each user by the model of its A/B group (the salt and percent recorded with the version).

    Raises:
        WorkerJobError: A group has users but the version has no model for it.
    """
    salt, percent, k = plan.meta["salt"], int(plan.meta["control_percent"]), int(plan.meta["k"])
    groups = split_users(np.asarray(user_ids, dtype=np.int32), salt, percent)
    parts = []
    for group, users in groups.items():
        if users.size and group not in models:
            raise WorkerJobError(f"version {plan.version} has no {group} model for {users.size} users of its split")
        if users.size:
            inputs = ModelInputs(features, embedding if group == TEST else None, collab)
            parts.append(score_users(models[group], inputs, users, k))
    return merge_top(parts)


def delete_lists(client: redis.Redis[bytes], keys: KeyLayout, version: str, user_ids: Sequence[int]) -> None:
    """UNLINK the users' lists of a version (what an earlier, interrupted attempt may have left)."""
    for start in range(0, len(user_ids), USERS_PER_PIPELINE):
        chunk = user_ids[start : start + USERS_PER_PIPELINE]
        with client.pipeline(transaction=False) as pipe:
            for user_id in chunk:
                pipe.unlink(keys.recs(version, user_id))
            pipe.execute()


def check_lists(client: redis.Redis[bytes], keys: KeyLayout, version: str, rankings: TopK) -> ShardCounts:
    """Count the written lists back against the rankings.

    Raises:
        WorkerJobError: A user's list holds another number of posts than its ranking.
    """
    expected = expected_lengths(rankings)
    users = list(expected)
    for start in range(0, len(users), USERS_PER_PIPELINE):
        chunk = users[start : start + USERS_PER_PIPELINE]
        with client.pipeline(transaction=False) as pipe:
            for user_id in chunk:
                pipe.llen(keys.recs(version, user_id))
            found = pipe.execute()
        for user_id, length in zip(chunk, found, strict=True):
            if length != expected[user_id]:
                raise WorkerJobError(f"version {version}: user {user_id} has {length} posts, not {expected[user_id]}")
    lengths = list(expected.values())
    return ShardCounts(users=len(lengths), with_list=sum(1 for n in lengths if n), entries=sum(lengths))


def completion_problems(
    plan: RefreshPlan, landed: dict[int, ShardCounts], catalog: int, popular: int, meta_started: bool
) -> list[str]:
    """Why a version may not go live; empty when every shard landed and every count matches.

    Args:
        plan: The refresh's plan.
        landed: Shards recorded as landed, by index.
        catalog: Posts found in the version's catalog.
        popular: Length of the version's popular list.
        meta_started: Whether the version's meta hash still exists (it is deleted with an abandoned version).
    """
    problems = []
    missing = sorted(set(range(plan.shards)) - set(landed))
    if missing:
        problems.append(f"shards {missing} did not land")
    scored = sum(counts.users for counts in landed.values())
    if not missing and scored != plan.users:
        problems.append(f"shards scored {scored} users, expected {plan.users}")
    if catalog != plan.posts:
        problems.append(f"catalog holds {catalog} posts, expected {plan.posts}")
    if popular != plan.popular:
        problems.append(f"popular list holds {popular} posts, expected {plan.popular}")
    if not meta_started:
        problems.append("its meta hash is gone (deleted as abandoned)")
    return problems


def finalize_version(client: redis.Redis[bytes], settings: Settings, version: str) -> dict[str, Any]:
    """Make the version live if every shard landed and the counts match; otherwise delete it.

    Returns:
        The version, the one it replaced, and its user count.

    Raises:
        WorkerJobError: The version was abandoned; its keys are deleted and the live version is unchanged.
    """
    keys = KeyLayout(settings.prefix)
    try:
        plan = staging.load_plan(client, keys, version)
    except WorkerJobError:
        abandon(client, keys, version, ["its plan is gone (expired or cleaned up)"])
    landed = staging.landed_shards(client, keys, version)
    problems = completion_problems(
        plan,
        landed,
        catalog=client.hlen(keys.posts(version)),
        popular=client.llen(keys.popular(version)),
        meta_started=bool(client.exists(keys.meta(version))),
    )
    if problems:
        abandon(client, keys, version, problems)
    return go_live(client, keys, settings, plan, landed)


def abandon(client: redis.Redis[bytes], keys: KeyLayout, version: str, problems: list[str]) -> NoReturn:
    """Delete every key of a version that may not go live, and fail the job with the reasons.

    Raises:
        WorkerJobError: Always.
    """
    live = client.get(keys.current)
    if live is not None and live.decode() == version:  # already live (a retried final job): never delete it
        raise WorkerJobError(f"version {version} is live but {'; '.join(problems)}: check it with `postrec rollback`")
    deleted = delete_version(client, keys, version)
    log.error("version abandoned: version=%s keys_deleted=%d reasons=%s", version, deleted, "; ".join(problems))
    raise WorkerJobError(
        f"version {version} abandoned ({'; '.join(problems)}); its keys are deleted and the live version "
        f"{live.decode() if live else '(none)'} is unchanged: see the failed shard jobs with `rq info`"
    )


def go_live(
    client: redis.Redis[bytes], keys: KeyLayout, settings: Settings, plan: RefreshPlan, landed: dict[int, ShardCounts]
) -> dict[str, Any]:
    """Write the full meta, flip ``current`` atomically, keep the inputs, and delete expired versions."""
    version = plan.version
    meta = {**plan.meta, "users": str(sum(counts.with_list for counts in landed.values())), CREATED_AT: utc_now()}
    client.hset(keys.meta(version), mapping=meta)  # type: ignore[arg-type]
    previous = make_live(client, keys, version)
    staging.keep_inputs(client, keys, version)
    log.info("version live: version=%s previous=%s users=%s", version, previous, meta["users"])
    try:
        deleted = delete_expired_versions(client, keys, settings.version_grace_seconds)
    except redis.RedisError as exc:  # the version is live; old ones go on the next flip
        log.warning("cleaning up old versions failed: %s", exc)
        deleted = []
    return {"version": version, "previous": previous, "users": int(meta["users"]), "deleted": deleted}


def refresh_user(client: redis.Redis[bytes], settings: Settings, user_id: int, engine: Engine) -> dict[str, Any]:
    """Rescore one user of the live version now, replacing the user's list in one transaction.

    On a version made by ``postrec build`` or ``score`` the first call stages the version's inputs (see
    :mod:`worker.built_versions`). The user's features are recomputed from all of its rows in PostgreSQL as of now (see
    :func:`live_user_features`) and scored by the live version's model of its A/B group. The post features, the
    time features of scoring and the ``test`` model's embedding features (post embeddings, the user's taste vector
    and ALS factors) stay the live version's, as stored when it was built.

    Raises:
        NoPublishedVersionError: Nothing is live.
        UnknownUserError: The user is not in the live version.
        SourceUnavailableError: PostgreSQL cannot be reached; the user's list is left as it was.
        MissingArtifactError: A built version's model is not on this machine.
    """
    keys = KeyLayout(settings.prefix)
    version = live_version(client, keys)
    plan = load_or_stage_plan(client, settings, engine, version, input_ttl_s(settings))
    one = live_user_features(client, keys, plan, user_id, engine)
    models = staging.load_models(client, keys, plan)
    embedding = staging.load_shard_embedding(client, keys, plan, shard_of(plan, user_id))
    collab = staging.load_collab(client, keys, plan.version)
    rankings = score_groups(plan, models, one, embedding, [user_id], collab)
    post_ids = next(rankings.lists())[1]
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.recs(version, user_id))
        if post_ids:
            pipe.rpush(keys.recs(version, user_id), *post_ids)
        pipe.execute()
    return {"user_id": user_id, "version": version, "posts": len(post_ids)}


def shard_of(plan: RefreshPlan, user_id: int) -> int:
    """The shard of a version that holds the user's inputs."""
    return max(bisect.bisect_right(plan.shard_first_users, user_id) - 1, 0)


def live_user_features(
    client: redis.Redis[bytes], keys: KeyLayout, plan: RefreshPlan, user_id: int, engine: Engine
) -> FeatureSet:
    """One user's feature set as ``refresh_user`` scores it: the version's post side, the user's side of now.

    Raises:
        UnknownUserError: The user is not in the version.
        SourceUnavailableError: PostgreSQL cannot be reached.
    """
    features = staging.load_shard_features(client, keys, plan.version, shard_of(plan, user_id))
    try:
        features.user_positions([user_id])
    except KeyError:
        raise UnknownUserError(f"user {user_id} is not in the live version: check the id") from None
    encoders = Encoders.from_json(staging.load_encoders_json(client, keys, plan.version))
    rows = load_user_rows(engine, user_id)
    liked_now = [int(post) for post in client.smembers(keys.liked(user_id))]
    return user_features_now(features, encoders, rows, liked_now)
