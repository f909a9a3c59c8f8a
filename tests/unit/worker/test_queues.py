"""Job policies, queue names and the worker's CLI, without a server."""

from __future__ import annotations

import inspect

import pytest

from common.settings import Settings
from postrec.cli import build_parser
from worker import jobs
from worker.queues import JobPolicy, policies, queue_names
from worker.roles import BATCH, LIVE


def job_functions() -> set[str]:
    return {
        name
        for name, func in inspect.getmembers(jobs, inspect.isfunction)
        if func.__module__ == jobs.__name__ and not name.startswith("_")
    }


def test_every_job_function_has_a_policy_and_every_policy_a_function() -> None:
    assert job_functions() == set(policies(Settings()))


@pytest.mark.parametrize("name", sorted(policies(Settings())))
def test_every_policy_has_a_time_limit_and_keeps_failures_longer_than_results(name: str) -> None:
    policy = policies(Settings())[name]
    assert policy.timeout_s > 0
    assert policy.role in (LIVE, BATCH)
    assert policy.failure_ttl_s >= policy.result_ttl_s


def test_long_jobs_take_the_refresh_timeout_and_the_retry_settings() -> None:
    table = policies(Settings(refresh_timeout_seconds=1234, job_retries=5, job_retry_interval_seconds=7))
    assert table["score_shard"].timeout_s == 1234
    assert (table["score_shard"].retries, table["score_shard"].retry_interval_s) == (5, 7)
    assert table["sync_likes"].role == LIVE and table["score_shard"].role == BATCH


@pytest.mark.parametrize(("retries", "expected_max"), [(0, None), (1, 1), (3, 3)])
def test_retry_rule_follows_the_retry_count(retries: int, expected_max: int | None) -> None:
    retry = JobPolicy(LIVE, 60, retries, 2).retry()
    assert (None if retry is None else retry.max) == expected_max


def test_queue_names_carry_the_prefix_live_first() -> None:
    assert queue_names("shop") == ["shop:live", "shop:batch"]
    assert queue_names("shop", [BATCH]) == ["shop:batch"]


@pytest.mark.parametrize(
    ("argv", "attribute", "expected"),
    [
        (["worker"], "queues", [LIVE, BATCH]),
        (["worker", "--queues", "batch", "--burst"], "queues", [BATCH]),
        (["worker", "--burst"], "burst", True),
        (["sync-likes"], "wait", False),
        (["sync-likes", "--wait", "--timeout", "5"], "timeout", 5.0),
    ],
)
def test_worker_commands_parse(argv: list[str], attribute: str, expected: object) -> None:
    assert getattr(build_parser().parse_args(argv), attribute) == expected


def test_unknown_queue_role_is_refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker", "--queues", "nightly"])
