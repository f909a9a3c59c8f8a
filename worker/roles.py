"""The queue roles a worker can serve; kept apart from RQ so the CLI parser builds without importing it."""

from __future__ import annotations

from typing import Final

LIVE: Final = "live"
"""Short jobs that keep what is served current: the likes sync, one user's rescore, a version's final flip."""
BATCH: Final = "batch"
"""Long jobs: the refresh (extract and train) and its scoring shards."""
ROLES: Final = (LIVE, BATCH)
"""Every queue role, in the order a worker serves them: live jobs never wait behind a refresh's shards."""
