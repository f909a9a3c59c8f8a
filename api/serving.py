"""Answering one recommendation request: snapshot the live version, one script call, concatenate the posts."""

from __future__ import annotations

from datetime import datetime

from api.served_log import ServedLog
from api.store import Store
from api.versions import VersionWatcher
from common.ab import assign_group
from common.errors import UnknownUserError
from common.serving import ServedEntry


class Recommender:
    """Serves a user's next posts from the live version."""

    def __init__(self, store: Store, watcher: VersionWatcher, served_log: ServedLog) -> None:
        """Serve through ``store`` from whatever version ``watcher`` holds live, logging answers in ``served_log``."""
        self._store = store
        self._watcher = watcher
        self._served_log = served_log

    async def recommend(self, user_id: int, limit: int, time: datetime | None) -> bytes:
        """The JSON body of a :class:`~common.payloads.Recommendations` answer.

        Lists are precomputed as of the version's ``as_of``; ``time`` is only recorded in the served log, which is
        best-effort: an answer does not wait for its entry.

        Raises:
            NoPublishedVersionError: Nothing is published, or the live version is gone from Redis.
            UnknownUserError: The user has no list in the live version.
            StoreUnavailableError: Redis cannot be reached or answered with an error.
        """
        live = self._watcher.live  # read once: the whole answer comes from this one version
        if live is None:
            raise self._watcher.no_version_error()
        group = assign_group(user_id, live.meta.salt, live.meta.control_percent)
        post_ids = await self._store.recommend(live.version, user_id, limit)
        if post_ids is None:
            raise UnknownUserError(f"user {user_id} is not in the user set of version {live.version}")
        stamp = "" if time is None else time.isoformat()
        self._served_log.record(ServedEntry(stamp, user_id, group, live.version, post_ids))
        return live.response_body(group, post_ids)
