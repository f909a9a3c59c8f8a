"""The Redis key layout: the contract between batch/, worker/ and api/.

Keys of one user carry the user id as a hash tag (``{200}``) so the API's server-side script, which reads a user's
list and liked set together, touches a single slot on Redis Cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds every key under one prefix (``POSTREC_PREFIX``)."""

    prefix: str = "postrec"

    @property
    def current(self) -> str:
        """String: id of the live version."""
        return f"{self.prefix}:current"

    @property
    def previous(self) -> str:
        """String: the version before the live one, kept for rollback."""
        return f"{self.prefix}:previous"

    @property
    def served(self) -> str:
        """Stream: capped log of what the API served."""
        return f"{self.prefix}:served"

    @property
    def likes_watermark(self) -> str:
        """String: timestamp of the newest like already synced into the liked sets."""
        return f"{self.prefix}:likes:watermark"

    def version_prefix(self, version: str) -> str:
        """Common prefix of every key of one version, for scans and deletion."""
        return f"{self.prefix}:v:{version}:"

    def meta(self, version: str) -> str:
        """Hash: a version's metadata (as_of, created_at, models, salt, counts, metrics)."""
        return f"{self.version_prefix(version)}meta"

    def recs(self, version: str, user_id: int) -> str:
        """List: a user's top-K post ids, best first."""
        return f"{self.version_prefix(version)}recs:{{{user_id}}}"

    def posts(self, version: str) -> str:
        """Hash: post_id -> JSON {id, text, topic}, the API's catalog."""
        return f"{self.version_prefix(version)}posts"

    def popular(self, version: str) -> str:
        """List: the fallback ranking for users without a list."""
        return f"{self.version_prefix(version)}popular"

    def refresh_input(self, version: str, name: str) -> str:
        """String (bytes): an input of a sharded refresh (model, encoders, feature arrays, plan), read by shards on
        any machine; it expires unless the version goes live, and is deleted with its version."""
        return f"{self.version_prefix(version)}input:{name}"

    def shards_done(self, version: str) -> str:
        """Hash: shard index -> JSON counts of each scoring shard of a refresh that has landed and been counted."""
        return f"{self.version_prefix(version)}shards"

    def liked(self, user_id: int) -> str:
        """Set: every post the user liked, kept current between refreshes."""
        return f"{self.prefix}:liked:{{{user_id}}}"

    @property
    def liked_pattern(self) -> str:
        """SCAN pattern matching every liked set."""
        return f"{self.prefix}:liked:*"
