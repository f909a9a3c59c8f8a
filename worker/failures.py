"""Which job failures are worth another attempt.

A retry helps when something outside the job was briefly wrong: PostgreSQL or Redis unreachable, a worker killed
mid-job, a crash. It cannot help when the job was asked for something that does not exist or does not fit (an
unknown user, no live version, a missing model artifact, a refresh whose inputs expired): the next attempt fails
the same way, later. Those fail at once, so ``--wait`` reports them without waiting out the retry intervals.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final

import redis
from rq.job import Job

from common.errors import PostrecError, SourceUnavailableError, StoreUnavailableError

# Our own errors that name a passing condition: the same job may succeed once the server is back.
TRANSIENT_ERRORS: Final = (SourceUnavailableError, StoreUnavailableError)


def is_permanent(error: BaseException | None) -> bool:
    """Whether another attempt of the job would fail the same way."""
    return isinstance(error, PostrecError) and not isinstance(error, TRANSIENT_ERRORS)


def stop_retrying_permanent(
    job: Job,
    connection: redis.Redis[bytes],
    error_type: type[BaseException] | None,
    error: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """rq failure callback: drop the job's remaining retries when its error is permanent.

    rq runs it in the work horse before deciding on a retry, on the same job object, so a job without retries left
    goes straight to the failed registry (and its dependents run).
    """
    if is_permanent(error):
        job.retries_left = 0
