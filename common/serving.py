"""The serving rule, run inside Redis, and the served log's entry: the contract the API and the evaluation share.

It lives here, in the contract, so that the API and the batch's evaluation share one script without importing each
other. :func:`recommend_call` builds the script's KEYS and ARGV from the key layout; :func:`served_log_command`
builds the XADD that logs an answer.

The log is written by a separate command, not by the script: a read must not fail because the log cannot be written
(``maxmemory`` full under ``noeviction`` refuses every write, and a script that writes is refused as a whole), and
on Redis Cluster the stream lives in another slot than the user's keys the script reads (CROSSSLOT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from common.keys import KeyLayout

# The serving rule of api.ranking.first_unliked, run inside Redis so a request costs one round trip. Read-only.
# KEYS: 1 the user's list, 2 the user's liked set (both carry the user's hash tag), 3 the version's popular list.
# ARGV: 1 limit.
# Returns the chosen post ids; nil when the user has no list in this version; VERSION_GONE when the version has no
# popular list either: the version is gone (Redis restarted empty, or it was deleted), which is no unknown user.
# On Redis Cluster, KEY 3 lives in another slot than the user's keys: there the script gets KEYS 1 and 2 only, and
# the caller tells VERSION_GONE apart and tops up from the popular list itself (common.cluster_serving).
RECOMMEND_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if #KEYS >= 3 and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
  return false
end
local limit = tonumber(ARGV[1])
local page = math.max(limit * 2, 16)
local chosen, seen = {}, {}
local function take(key)
  local start = 0
  while #chosen < limit do
    local ids = redis.call('LRANGE', key, start, start + page - 1)
    if #ids == 0 then return end
    local liked = redis.call('SMISMEMBER', KEYS[2], unpack(ids))
    for i, id in ipairs(ids) do
      if liked[i] == 0 and not seen[id] then
        seen[id] = true
        chosen[#chosen + 1] = id
        if #chosen == limit then return end
      end
    end
    start = start + page
  end
end
take(KEYS[1])
if #chosen < limit and #KEYS >= 3 then take(KEYS[3]) end
return chosen
"""

RECOMMEND_KEYS: Final = 3
VERSION_GONE: Final = 0


def recommend_call(
    keys: KeyLayout, version: str, user_id: int, limit: int
) -> tuple[tuple[str, ...], tuple[int | str, ...]]:
    """KEYS and ARGV of :data:`RECOMMEND_LUA` for one request.

    Args:
        keys: The deployment's key layout.
        version: The version to serve from.
        user_id: The user asking.
        limit: Posts wanted.
    """
    return (keys.recs(version, user_id), keys.liked(user_id), keys.popular(version)), (limit,)


@dataclass(frozen=True, slots=True)
class ServedEntry:
    """One answer as the served log records it (``postrec ab-report`` reads these fields back).

    Attributes:
        time: The request's time (ISO 8601), or empty when the request gave none.
        user_id: The user answered.
        group: The user's A/B group.
        version: The version answered from.
        post_ids: The post ids answered, in order (as Redis returned them).
    """

    time: str
    user_id: int
    group: str
    version: str
    post_ids: Sequence[bytes]


def served_log_command(keys: KeyLayout, served_maxlen: int, entry: ServedEntry) -> tuple[bytes | str | int, ...]:
    """The XADD that appends one answer to the capped ``served`` stream (fields time, user, group, version, posts).

    Args:
        keys: The deployment's key layout.
        served_maxlen: Approximate cap of the stream (``MAXLEN ~`` trims whole nodes, which is cheap).
        entry: The answer to log.
    """
    fields = ("time", entry.time, "user", entry.user_id, "group", entry.group, "version", entry.version)
    return ("XADD", keys.served, "MAXLEN", "~", served_maxlen, "*", *fields, "posts", b",".join(entry.post_ids))
