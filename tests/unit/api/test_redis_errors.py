"""Every Redis failure becomes a 503 error naming the condition: error replies keep their code."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_errors

from api.redis_errors import reply_code, store_failure
from api.versions import STALE_AFTER_S, WatcherState


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (redis_errors.ResponseError("BUSY Redis is busy running a script."), "BUSY"),
        (redis_errors.ResponseError("NOAUTH Authentication required."), "NOAUTH"),
        (redis_errors.ReadOnlyError("You can't write against a read only replica."), "READONLY"),
        (redis_errors.BusyLoadingError("Redis is loading the dataset in memory"), "LOADING"),
        (redis_errors.ResponseError("wrong number of arguments"), "ERR"),
    ],
)
def test_reply_code_survives_redis_py_stripping_it(exc: redis_errors.RedisError, expected: str) -> None:
    assert reply_code(exc) == expected


def test_failures_name_the_condition_and_what_to_do() -> None:
    assert "NOAUTH" in str(store_failure(redis_errors.AuthenticationError("Authentication required.")))
    wrong = str(store_failure(redis_errors.AuthenticationError("invalid username-password pair")))
    assert "WRONGPASS" in wrong and "POSTREC_REDIS_URL" in wrong
    assert "Redis is unreachable (TimeoutError)" in str(store_failure(redis_errors.TimeoutError()))
    assert "(CROSSSLOT)" in str(store_failure(redis_errors.ResponseError("CROSSSLOT Keys in request don't hash")))


@pytest.mark.parametrize(
    ("state", "stale"),
    [
        (WatcherState(error=None, seconds_since_ok=0.1, running=True), False),
        (WatcherState(error="BUSY", seconds_since_ok=1.0, running=True), False),  # a short fault: still current
        (WatcherState(error="BUSY", seconds_since_ok=STALE_AFTER_S + 1, running=True), True),
        (WatcherState(error=None, seconds_since_ok=None, running=True), True),  # never loaded anything
        (WatcherState(error=None, seconds_since_ok=0.1, running=False), True),  # its task is gone
    ],
)
def test_watcher_is_stale_when_polls_fail_for_long_or_it_stopped(state: WatcherState, stale: bool) -> None:
    assert state.stale is stale
