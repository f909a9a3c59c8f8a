"""The serving rule, run inside Redis: the API's hot path and the evaluation both ask for posts through it.

It lives here, in the contract, so that the API and the batch's evaluation share one script without importing each
other. :func:`recommend_call` builds its KEYS and ARGV from the key layout.
"""

from __future__ import annotations

from typing import Final

from common.keys import KeyLayout

# The serving rule of api.ranking.first_unliked, run inside Redis so a request costs one round trip.
# KEYS: 1 the user's list, 2 the user's liked set (both carry the user's hash tag), 3 the version's popular list,
#       4 the served stream.
# ARGV: 1 limit, 2 the stream's approximate cap, 3 request time, 4 user id, 5 group, 6 version.
# Returns the chosen post ids, or nil when the user has no list in this version.
# On Redis Cluster, KEYS 3 and 4 live in other slots than the user's keys: the popular list would have to be
# copied under each slot's hash tag and the served log split into per-slot streams (served:{<slot tag>}).
RECOMMEND_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
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
if #chosen < limit then take(KEYS[3]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'time', ARGV[3], 'user', ARGV[4], 'group', ARGV[5],
  'version', ARGV[6], 'posts', table.concat(chosen, ','))
return chosen
"""

RECOMMEND_KEYS: Final = 4


def recommend_call(
    keys: KeyLayout, version: str, user_id: int, limit: int, served_maxlen: int, time: str, group: str
) -> tuple[tuple[str, ...], tuple[int | str, ...]]:
    """KEYS and ARGV of :data:`RECOMMEND_LUA` for one request.

    Args:
        keys: The deployment's key layout.
        version: The version to serve from.
        user_id: The user asking.
        limit: Posts wanted.
        served_maxlen: Approximate cap of the served stream.
        time: The request's time, as recorded in the served log.
        group: The user's A/B group (or the evaluation's recommender name), as recorded in the served log.
    """
    script_keys = (keys.recs(version, user_id), keys.liked(user_id), keys.popular(version), keys.served)
    return script_keys, (limit, served_maxlen, time, user_id, group, version)
