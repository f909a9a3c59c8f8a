"""Publish a version to Redis with the layout of :mod:`common.keys`, verify it, and make it live atomically.

Order of a publish: an incomplete meta hash (only ``created_at``) marks the version as being written; then the
catalog, the popular list, every user's list and the liked sets; then a count of what landed; then the full meta;
then one server-side script that makes it live only if its meta is complete, keeping the old live version as
``previous``. A failure anywhere before that script leaves what is served untouched. Superseded versions and
abandoned half-written ones are deleted on a later publish, once ``version_grace_seconds`` have passed.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import msgspec
import polars as pl
import redis

from batch.publish.pointer import make_live_across_slots, rollback_across_slots
from batch.publish.rankings_wire import RankingWriter
from batch.ranking.topk import TopK
from common.columns import Col
from common.errors import NoPublishedVersionError, PublishError
from common.keys import KeyLayout
from common.payloads import Post, VersionMeta
from common.redis_clients import is_cluster
from common.redis_nodes import node_groups
from common.settings import Settings

log = logging.getLogger(__name__)

CREATED_AT: Final = "created_at"
USERS_PER_PIPELINE: Final = 2_000
POSTS_PER_PIPELINE: Final = 1_000
REQUIRED_FIELDS: Final = tuple(VersionMeta.__struct_fields__)

# Makes ARGV[1] live only if its meta hash has every field; the old live version becomes previous.
# KEYS: current, previous, the new version's meta. ARGV: version, then the required meta fields.
MAKE_LIVE_LUA: Final = """
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then
    return redis.error_reply('version ' .. ARGV[1] .. ' is incomplete: meta lacks ' .. ARGV[i])
  end
end
local old = redis.call('GET', KEYS[1])
if old == ARGV[1] then return old end
if old then redis.call('SET', KEYS[2], old) end
redis.call('SET', KEYS[1], ARGV[1])
return old
"""

# Swaps current and previous if previous is still ARGV[1] and its meta is still complete.
# KEYS: current, previous, previous's meta. ARGV: the expected previous version, then the required meta fields.
ROLLBACK_LUA: Final = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('previous changed meanwhile: retry') end
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then
    return redis.error_reply('previous version ' .. ARGV[1] .. ' is incomplete or deleted')
  end
end
local live = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if live then redis.call('SET', KEYS[2], live) else redis.call('DEL', KEYS[2]) end
return live
"""

# Replaces a liked set in one step, so a reader never sees it empty or half-filled.
REPLACE_SET_LUA: Final = """
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 5000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 4999, #ARGV)))
end
return #ARGV
"""


def new_version_id(as_of: datetime) -> str:
    """A version id: as_of in UTC, compact ISO 8601, and 6 random hex digits (``20211229T000000Z-1a2b3c``)."""
    moment = as_of if as_of.tzinfo is None else as_of.astimezone(UTC).replace(tzinfo=None)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_now() -> str:
    """The current time as ISO 8601 UTC, as meta's ``created_at`` holds it."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def version_meta(
    *,
    version: str,
    as_of: datetime,
    settings: Settings,
    models: Mapping[str, str],
    k: int,
    users: int,
    posts: int,
    metrics: Mapping[str, float] | None = None,
    baselines: Mapping[str, float] | None = None,
) -> VersionMeta:
    """The one constructor of a version's meta (build, score, refresh and evaluation all call it).

    Args:
        version: The version id.
        as_of: Only data before it was used.
        settings: The deployment's settings: the A/B salt and control percent recorded with the version.
        models: A/B group (or ``embedding``) -> the model version or method that scored it.
        k: List length.
        users: Users with a non-empty list (0 while shards are still to count them).
        posts: Posts in the catalog.
        metrics: Validation figures; values that are not finite (a metric that could not be measured) are left out.
        baselines: Hitrate@5 of each tuned seen-aware baseline on the same validation window (finite ones only).
    """
    return VersionMeta(
        version=version,
        as_of=as_of.isoformat(),
        created_at=utc_now(),
        models=dict(models),
        salt=settings.ab_salt,
        control_percent=settings.control_percent,
        k=k,
        users=users,
        posts=posts,
        metrics=_finite(metrics),
        baselines=_finite(baselines),
    )


def _finite(figures: Mapping[str, float] | None) -> dict[str, float]:
    return {name: float(value) for name, value in (figures or {}).items() if math.isfinite(value)}


@dataclass(frozen=True, slots=True)
class Release:
    """Everything one version holds.

    Attributes:
        meta: The version's metadata; ``meta.version`` is its id.
        rankings: Every user's top-K.
        posts: The catalog (post_id, text, topic).
        popular: The fallback ranking, post ids best first.
        liked: (user_id, post_id) liked up to as_of, written to the liked sets; None leaves them alone.
    """

    meta: VersionMeta
    rankings: TopK
    posts: pl.DataFrame
    popular: Sequence[int]
    liked: pl.DataFrame | None = None


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_catalog(client: redis.Redis[bytes], keys: KeyLayout, version: str, posts: pl.DataFrame) -> int:
    """HSET the catalog: post_id -> JSON {id, text, topic}. Returns the number of posts."""
    encoder = msgspec.json.Encoder()
    rows = posts.select(Col.POST_ID, Col.TEXT, Col.TOPIC).iter_rows()
    mapping = {
        post_id: encoder.encode(Post(id=post_id, text=text or "", topic=topic or "")) for post_id, text, topic in rows
    }
    items = list(mapping.items())
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(items), POSTS_PER_PIPELINE):
            pipe.hset(keys.posts(version), mapping=dict(items[start : start + POSTS_PER_PIPELINE]))
        pipe.execute()
    return len(items)


def write_popular(client: redis.Redis[bytes], keys: KeyLayout, version: str, popular: Sequence[int]) -> None:
    """RPUSH the fallback ranking."""
    with client.pipeline(transaction=False) as pipe:
        for chunk in _chunks(list(popular), 10_000):
            pipe.rpush(keys.popular(version), *chunk)
        pipe.execute()


def write_rankings(client: redis.Redis[bytes], keys: KeyLayout, version: str, rankings: TopK) -> int:
    """Every user's list, many users per round trip (per master on a cluster). Returns users with a list."""
    list_keys = [keys.recs(version, user_id) for user_id in rankings.user_ids.tolist()]
    written = 0
    for group in node_groups(client, list_keys):
        writer = RankingWriter(group.client, keys, version)
        written += writer.write(rankings.user_ids[group.positions], rankings.post_ids[group.positions])
    return written


def write_liked_sets(client: redis.Redis[bytes], keys: KeyLayout, user_ids: Iterable[int], liked: pl.DataFrame) -> int:
    """Replace each user's liked set with the posts it liked up to as_of (users without likes: emptied).

    Returns:
        The number of users with a non-empty set.
    """
    per_user = liked.group_by(Col.USER_ID).agg(pl.col(Col.POST_ID).unique().sort())
    lookup = dict(zip(per_user[Col.USER_ID].to_list(), per_user[Col.POST_ID].to_list(), strict=True))
    users = list(user_ids)
    for group in node_groups(client, [keys.liked(user_id) for user_id in users]):  # scripts run per master
        script = group.client.register_script(REPLACE_SET_LUA)
        for chunk in _chunks([users[position] for position in group.positions], USERS_PER_PIPELINE):
            with group.client.pipeline(transaction=False) as pipe:
                for user_id in chunk:
                    posts = lookup.get(user_id)
                    if posts:
                        script(keys=[keys.liked(user_id)], args=posts, client=pipe)
                    else:
                        pipe.delete(keys.liked(user_id))
                pipe.execute()
    return sum(1 for user_id in users if lookup.get(user_id))


def expected_lengths(rankings: TopK) -> dict[int, int]:
    """user id -> length of its list (padding left out)."""
    lengths = (rankings.post_ids >= 0).sum(axis=1)
    return dict(zip(rankings.user_ids.tolist(), lengths.tolist(), strict=True))


def verify_version(client: redis.Redis[bytes], keys: KeyLayout, release: Release) -> None:
    """Count what landed: every user's list length, the catalog and the popular list.

    Raises:
        PublishError: A count differs from what was written.
    """
    version = release.meta.version
    expected = expected_lengths(release.rankings)
    users = list(expected)
    for chunk in _chunks(users, 10_000):
        with client.pipeline(transaction=False) as pipe:
            for user_id in chunk:
                pipe.llen(keys.recs(version, user_id))
            found = pipe.execute()
        wrong = [(user, expected[user], got) for user, got in zip(chunk, found, strict=True) if got != expected[user]]
        if wrong:
            user, want, got = wrong[0]
            raise PublishError(f"version {version}: user {user} has {got} posts, expected {want} ({len(wrong)} wrong)")
    _check_count("catalog", client.hlen(keys.posts(version)), release.posts.height, version)
    _check_count("popular list", client.llen(keys.popular(version)), len(release.popular), version)


def _check_count(what: str, found: int, expected: int, version: str) -> None:
    if found != expected:
        raise PublishError(f"version {version}: {what} holds {found}, expected {expected}")


def make_live(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> str | None:
    """Atomically point ``current`` at the version (only if its meta is complete); returns the old live one.

    On Redis Cluster the three keys lie in different slots: :func:`make_live_across_slots` flips there.
    """
    if is_cluster(client):
        return make_live_across_slots(client, keys, version, REQUIRED_FIELDS)
    script = client.register_script(MAKE_LIVE_LUA)
    old = script(keys=[keys.current, keys.previous, keys.meta(version)], args=[version, *REQUIRED_FIELDS])
    return None if old is None else bytes(old).decode()


def _watermark_text(moment: datetime) -> str:
    # The likes sync's watermark format (worker.likes.format_watermark): ISO 8601 with microseconds.
    return moment.isoformat(timespec="microseconds")


def _publish_steps(client: redis.Redis[bytes], keys: KeyLayout, release: Release) -> str | None:
    write_version(client, keys, release)
    return make_live(client, keys, release.meta.version)


def write_version(client: redis.Redis[bytes], keys: KeyLayout, release: Release) -> None:
    """Write and verify every key of a version, meta last, without making it live: readers that name the version
    (``postrec evaluate`` asks the serving script for each recommender's version by id) see it whole.

    Raises:
        redis.RedisError: Redis failed.
        PublishError: A count did not match.
    """
    version = release.meta.version
    client.hset(keys.meta(version), CREATED_AT, utc_now())
    posts = write_catalog(client, keys, version, release.posts)
    write_popular(client, keys, version, release.popular)
    started = time.perf_counter()
    users = write_rankings(client, keys, version, release.rankings)
    seconds = time.perf_counter() - started
    log.info("lists written: version=%s users=%d posts=%d seconds=%.2f", version, users, posts, seconds)
    if release.liked is not None:
        # Lowering the sync watermark to as_of makes the likes sync add back any later like the replace drops.
        watermark = _watermark_text(datetime.fromisoformat(release.meta.as_of))
        client.set(keys.likes_watermark, watermark)
        with_likes = write_liked_sets(client, keys, release.rankings.user_ids.tolist(), release.liked)
        client.set(keys.likes_watermark, watermark)
        log.info("liked sets replaced: users_with_likes=%d", with_likes)
    verify_version(client, keys, release)
    meta: dict[str | bytes, str] = {name: value for name, value in release.meta.to_hash().items()}
    meta[CREATED_AT] = utc_now()
    client.hset(keys.meta(version), mapping=meta)


def publish_release(client: redis.Redis[bytes], keys: KeyLayout, release: Release, grace_seconds: int) -> str | None:
    """Write, verify and make live a version; then delete versions superseded longer than the grace period ago.

    Args:
        client: Redis client of the serving store.
        keys: Key layout of the deployment.
        release: What to publish.
        grace_seconds: How long superseded versions stay for readers that still hold their id.

    Returns:
        The version that was live before, now ``previous`` (None on the first publish).

    Raises:
        PublishError: Redis failed or a count did not match; the live version was left as it was.
    """
    version = release.meta.version
    try:
        old = _publish_steps(client, keys, release)
    except redis.RedisError as exc:
        raise PublishError(
            f"publishing version {version} failed ({type(exc).__name__}: {exc}); the live version is unchanged: "
            "check Redis and run `postrec score` to publish again"
        ) from exc
    log.info("version live: prefix=%s version=%s previous=%s", keys.prefix, version, old)
    try:
        deleted = delete_expired_versions(client, keys, grace_seconds)
    except redis.RedisError as exc:  # the new version is live; old ones go on the next publish
        log.warning("cleaning up old versions failed: %s", exc)
    else:
        log.info("old versions deleted: %s", ", ".join(deleted) or "none")
    return old


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def list_versions(client: redis.Redis[bytes], keys: KeyLayout) -> dict[str, dict[str, str]]:
    """Every version with a meta hash in Redis: id -> its meta fields (complete or not)."""
    pattern = keys.meta("*")
    prefix, suffix = pattern.split("*")
    found: dict[str, dict[str, str]] = {}
    for raw_key in client.scan_iter(match=pattern, count=1000):
        key = raw_key.decode()
        fields = client.hgetall(key)
        found[key[len(prefix) : len(key) - len(suffix)]] = {k.decode(): v.decode() for k, v in fields.items()}
    return found


def _age_seconds(created_at: str | None, now: datetime) -> float:
    if not created_at:
        return float("inf")
    moment = datetime.fromisoformat(created_at)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (now - moment).total_seconds()


def expired_versions(
    versions: dict[str, dict[str, str]], current: str | None, previous: str | None, grace_seconds: int, now: datetime
) -> list[str]:
    """Versions to delete: neither live nor previous, and out of use for at least ``grace_seconds``.

    A complete version older than ``previous`` stopped being live when ``previous`` went live (its meta's
    ``created_at`` is written just before), so that is when its grace starts; an incomplete one (a failed or
    killed build) counts from when its writing began.
    """
    previous_live_for = _age_seconds(versions.get(previous or "", {}).get(CREATED_AT), now)
    expired = []
    for version, meta in versions.items():
        if version in (current, previous):
            continue
        complete = all(name in meta for name in REQUIRED_FIELDS)
        idle = previous_live_for if complete else _age_seconds(meta.get(CREATED_AT), now)
        if idle >= grace_seconds:
            expired.append(version)
    return sorted(expired)


def delete_version(client: redis.Redis[bytes], keys: KeyLayout, version: str) -> int:
    """UNLINK every key of a version (meta last, so a half-deleted version still counts as one). Returns keys."""
    meta = keys.meta(version)
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=keys.version_prefix(version) + "*", count=5000):
        if key.decode() != meta:
            batch.append(key)
        if len(batch) >= 5000:
            deleted += int(client.unlink(*batch))
            batch = []
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted + int(client.unlink(meta))


def delete_expired_versions(client: redis.Redis[bytes], keys: KeyLayout, grace_seconds: int) -> list[str]:
    """Delete the versions :func:`expired_versions` selects. Returns their ids."""
    current, previous = _text(client.get(keys.current)), _text(client.get(keys.previous))
    expired = expired_versions(list_versions(client, keys), current, previous, grace_seconds, datetime.now(UTC))
    for version in expired:
        delete_version(client, keys, version)
    return expired


def rollback(client: redis.Redis[bytes], keys: KeyLayout) -> tuple[str, str | None]:
    """Make ``previous`` live again; the version it replaces becomes ``previous``.

    Returns:
        (the version now live, the version that was live).

    Raises:
        NoPublishedVersionError: There is no previous version to go back to.
        PublishError: The previous version is incomplete or was deleted.
    """
    previous = _text(client.get(keys.previous))
    if previous is None:
        raise NoPublishedVersionError("no previous version to roll back to: publish at least twice first")
    if is_cluster(client):
        return previous, rollback_across_slots(client, keys, previous, REQUIRED_FIELDS)
    script = client.register_script(ROLLBACK_LUA)
    try:
        old = script(keys=[keys.current, keys.previous, keys.meta(previous)], args=[previous, *REQUIRED_FIELDS])
    except redis.ResponseError as exc:
        raise PublishError(f"cannot roll back: {exc}") from None
    return previous, None if old is None else bytes(old).decode()
