"""Which job failures are retried: passing outages and crashes are, requests that can never succeed are not."""

from __future__ import annotations

import pytest
import redis

from batch.pipeline.artifacts import MissingArtifactError
from common.errors import (
    NoPublishedVersionError,
    SourceUnavailableError,
    StoreUnavailableError,
    UnknownUserError,
    WorkerJobError,
)
from worker.failures import is_permanent


@pytest.mark.parametrize(
    "error",
    [UnknownUserError("user 1"), NoPublishedVersionError(), MissingArtifactError("gone"), WorkerJobError("missing")],
)
def test_requests_that_cannot_succeed_are_permanent(error: Exception) -> None:
    assert is_permanent(error)


@pytest.mark.parametrize(
    "error",
    [
        SourceUnavailableError("PostgreSQL down"),
        StoreUnavailableError("Redis down"),
        redis.ConnectionError("reset"),
        MemoryError(),
        None,  # a worker killed mid-job: rq reports no exception object
    ],
)
def test_outages_and_crashes_are_retried(error: BaseException | None) -> None:
    assert not is_permanent(error)
