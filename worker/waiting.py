"""Waiting for an enqueued job from the command line (``--wait``)."""

from __future__ import annotations

import re
import time
from typing import Any, Final

from rq.job import Job, JobStatus

from common.errors import WorkerJobError

TERMINAL: Final = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
POLL_S: Final = 0.2
EXCEPTION_LINE: Final = re.compile(r"^[\w.]+(Error|Exception)\b")


def wait_for_result(job: Job, timeout_s: float) -> Any:  # noqa: ANN401 - whatever the job function returned
    """Block until the job ends; return its result.

    Retries in between count as running: only the last attempt's outcome matters.

    Raises:
        WorkerJobError: The job failed for good, was stopped, or is still pending after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    status = job.get_status(refresh=True)
    while status not in TERMINAL:
        if time.monotonic() > deadline:
            raise WorkerJobError(
                f"job {job.id} ({job.func_name}) is still {status} after {timeout_s:.0f} s: "
                "is a `postrec worker` running for its queue? `rq info` shows queues and workers"
            )
        time.sleep(POLL_S)
        status = job.get_status(refresh=True)
    if status != JobStatus.FINISHED:
        raise WorkerJobError(f"job {job.id} ({job.func_name}) ended {status.value}: {_failure_reason(job)}")
    return job.return_value()


def _failure_reason(job: Job) -> str:
    """The exception line of the job's last traceback (the last line naming an error, past any trailing notes)."""
    result = job.latest_result()
    lines = (result.exc_string or "").strip().splitlines() if result is not None else []
    errors = [line for line in lines if EXCEPTION_LINE.match(line)]
    return errors[-1] if errors else "see `rq info` and the failed registry"


def wait_for_refresh(job: Job, timeout_s: float) -> Any:  # noqa: ANN401 - the final job's result
    """Block until a refresh (or rescore) job has started its shards and its final job has ended.

    Returns:
        The final job's result: the version now live and the one it replaced.

    Raises:
        WorkerJobError: The refresh or its final job failed (the version was abandoned), or time ran out.
    """
    deadline = time.monotonic() + timeout_s
    started = wait_for_result(job, timeout_s)
    final = Job.fetch(started["finalize_job"], connection=job.connection)
    return wait_for_result(final, max(deadline - time.monotonic(), 0.0))
