"""What the API makes of a Redis failure: every one is a :class:`~common.errors.StoreUnavailableError` (503).

Redis fails in two ways: it cannot be reached (refused, dropped, no answer in time), or it answers with an error
reply, such as BUSY while a long script runs, LOADING while it reads its data set, NOAUTH after a password was set,
READONLY from a replica, OOM when full. Each is a condition of the Redis side, never of the request, so each is
answered with 503 and a message that names it, and the watcher retries through all of them.
"""

from __future__ import annotations

import re
from typing import Final

from redis import exceptions as redis_errors

from api.wire import unreachable
from common.errors import StoreUnavailableError

# redis-py strips the code off the error replies it has a class for: put it back.
_CODE_OF_CLASS: Final[tuple[tuple[type[redis_errors.RedisError], str], ...]] = (
    (redis_errors.NoPermissionError, "NOPERM"),
    (redis_errors.OutOfMemoryError, "OOM"),  # type: ignore[attr-defined]  # types-redis predates it
    (redis_errors.BusyLoadingError, "LOADING"),
    (redis_errors.ReadOnlyError, "READONLY"),
    (redis_errors.MasterDownError, "MASTERDOWN"),
    (redis_errors.ClusterDownError, "CLUSTERDOWN"),
    (redis_errors.TryAgainError, "TRYAGAIN"),
)
_CODE: Final = re.compile(r"[A-Z]{3,}")

ADVICE: Final[dict[str, str]] = {
    "BUSY": "Redis is busy running a long script (BUSY): it answers again once the script ends or is killed",
    "LOADING": "Redis is loading its data set (LOADING): it answers once loaded",
    "NOAUTH": "Redis requires a password (NOAUTH): put it in POSTREC_REDIS_URL and restart the API",
    "WRONGPASS": "Redis refused the password (WRONGPASS): check the password in POSTREC_REDIS_URL",
    "NOPERM": "Redis refused the command to this user (NOPERM): check the user's ACL",
    "READONLY": "Redis is a read-only replica (READONLY): point POSTREC_REDIS_URL at the primary",
    "OOM": "Redis is out of memory (OOM): see 'Redis full' in docs/operations.md",
    "MASTERDOWN": "Redis lost its primary (MASTERDOWN): it answers once the link is back",
}


def store_failure(exc: redis_errors.RedisError) -> StoreUnavailableError:
    """The 503 error for a Redis failure, naming the condition and what to do."""
    if isinstance(exc, redis_errors.AuthenticationError):  # a ConnectionError subclass: check it first
        return StoreUnavailableError(ADVICE["WRONGPASS" if "invalid" in str(exc) else "NOAUTH"])
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return unreachable(type(exc).__name__)
    code = reply_code(exc)
    return StoreUnavailableError(ADVICE.get(code, f"Redis refused the request ({code}): see the Redis log"))


def reply_code(exc: redis_errors.RedisError) -> str:
    """The error reply's code (BUSY, NOAUTH, ...), or ERR when it has none."""
    for cls, code in _CODE_OF_CLASS:
        if isinstance(exc, cls):
            return code
    first = str(exc).split(" ", 1)[0]
    return first if _CODE.fullmatch(first) else "ERR"
