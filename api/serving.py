"""Answering one recommendation request: snapshot the live version, one script call, concatenate the posts."""

from __future__ import annotations

from datetime import datetime

from api.store import Store
from api.versions import VersionWatcher
from common.ab import assign_group
from common.errors import NoPublishedVersionError, UnknownUserError


class Recommender:
    """Serves a user's next posts from the live version."""

    def __init__(self, store: Store, watcher: VersionWatcher) -> None:
        """Serve through ``store`` from whatever version ``watcher`` holds live."""
        self._store = store
        self._watcher = watcher

    async def recommend(self, user_id: int, limit: int, time: datetime | None) -> bytes:
        """The JSON body of a :class:`~common.payloads.Recommendations` answer.

        Lists are precomputed as of the version's ``as_of``; ``time`` is only recorded in the served log.

        Raises:
            NoPublishedVersionError: Nothing is published yet.
            UnknownUserError: The user has no list in the live version.
            StoreUnavailableError: Redis cannot be reached.
        """
        live = self._watcher.live  # read once: the whole answer comes from this one version
        if live is None:
            raise NoPublishedVersionError()
        group = assign_group(user_id, live.meta.salt, live.meta.control_percent)
        stamp = "" if time is None else time.isoformat()
        post_ids = await self._store.recommend(live.version, user_id, limit, group, stamp)
        if post_ids is None:
            raise UnknownUserError(f"user {user_id} is not in the user set of version {live.version}")
        return live.response_body(group, post_ids)
