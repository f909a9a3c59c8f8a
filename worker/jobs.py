"""RQ job functions: module-level, taking plain arguments (ids, version strings), so any worker on any machine can
run them. Each is an entry point: it reads the settings from the environment and opens its own clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from common.keys import KeyLayout
from common.settings import load_settings, queue_url
from worker import likes
from worker.connections import open_engine, open_redis


def sync_likes() -> dict[str, Any]:
    """Copy likes newer than the watermark into the liked sets (see :mod:`worker.likes`).

    Returns:
        Rows read, posts added, the new watermark (ISO text) and seconds, for ``rq info`` and ``--wait``.
    """
    settings = load_settings()
    overlap = timedelta(seconds=settings.likes_sync_overlap_seconds)
    with open_engine(settings.database_url) as engine, open_redis(settings.redis_url) as client:
        report = likes.sync_likes(engine, client, KeyLayout(settings.prefix), overlap=overlap)
    watermark = None if report.watermark is None else likes.format_watermark(report.watermark)
    return {"rows": report.rows, "added": report.added, "watermark": watermark, "seconds": round(report.seconds, 3)}


def start_refresh() -> str:
    """Enqueue ``refresh`` under its policy (the scheduler's nightly entry: rq's cron jobs carry no retry rule).

    Returns:
        The refresh job's id.
    """
    from worker.queues import enqueue_job

    settings = load_settings()
    with open_redis(queue_url(settings)) as connection:
        return str(enqueue_job(connection, settings, refresh).id)


def refresh() -> dict[str, Any]:
    """Extract, build features and train a new model, then score it in shards (see :mod:`worker.refresh`).

    Returns:
        The new version's id, its shard count and the id of the job that makes it live.
    """
    return _start_version(train=True)


def rescore() -> dict[str, Any]:
    """Score the live version's model on fresh features, in shards, as a new version."""
    return _start_version(train=False)


def _start_version(train: bool) -> dict[str, Any]:
    from worker.refresh import enqueue_shards, prepare_refresh

    settings = load_settings()
    with open_engine(settings.database_url) as engine, open_redis(settings.redis_url) as client:
        plan, _ = prepare_refresh(settings, engine, client, train=train)
    with open_redis(queue_url(settings)) as connection:  # the queues' Redis: the store may be a cluster
        final = enqueue_shards(connection, settings, plan)
    return {"version": plan.version, "shards": plan.shards, "users": plan.users, "finalize_job": final.id}


def score_shard(version: str, shard: int) -> dict[str, Any]:
    """Score one shard of a refresh and write its users' lists under ``version``."""
    from worker import refresh as sharded

    settings = load_settings()
    with open_redis(settings.redis_url) as client:
        counts = sharded.score_shard(client, settings, version, shard)
    return {"version": version, "shard": shard, "users": counts.users, "entries": counts.entries}


def finalize_version(version: str) -> dict[str, Any]:
    """Make ``version`` live once every shard landed and counts match; otherwise delete it (and fail)."""
    from worker import refresh as sharded

    settings = load_settings()
    with open_redis(settings.redis_url) as client:
        return sharded.finalize_version(client, settings, version)


def refresh_user(user_id: int) -> dict[str, Any]:
    """Rescore one user of the live version on its data of now, leaving out everything it liked so far."""
    from worker import refresh as sharded

    settings = load_settings()
    with open_engine(settings.database_url) as engine, open_redis(settings.redis_url) as client:
        return sharded.refresh_user(client, settings, user_id, engine)
