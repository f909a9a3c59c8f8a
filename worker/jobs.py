"""RQ job functions: module-level, taking plain arguments (ids, version strings), so any worker on any machine can
run them. Each is an entry point: it reads the settings from the environment and opens its own clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from common.keys import KeyLayout
from common.settings import load_settings
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
