"""The containers' health checks against real worker and scheduler processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from common.settings import Settings
from tests.integration.test_worker_queue import POSTREC, environment, wait_until
from worker.rq_state import purge_deployment


@pytest.fixture(autouse=True)
def clean_queues(redis_client: redis.Redis, key_prefix: str) -> Iterator[None]:
    yield
    purge_deployment(redis_client, key_prefix)


def health(settings: Settings, role: str) -> int:
    command = [sys.executable, "-m", "worker.health", role]
    return subprocess.run(command, env=environment(settings), capture_output=True, timeout=60, check=False).returncode


@pytest.mark.parametrize("role", ["worker", "scheduler"])
def test_healthy_while_running_and_not_after(settings: Settings, role: str) -> None:
    assert health(settings, role) == 1
    process = subprocess.Popen([POSTREC, role], env=environment(settings), stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: health(settings, role) == 0, timeout_s=60)
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert health(settings, role) == 1
