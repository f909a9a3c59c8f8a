"""The README's operations recipes, run as written by bash from the root of the clone, with no virtualenv activated,
against a real Redis on the test's database and key prefix and a real API on a free port (not 8000)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis

from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import make_version, publish, running_server

ROOT = Path(__file__).resolve().parents[2]
USER = 200
POSTS = list(range(1, 41))

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="the recipes need redis-cli on PATH")


def operations_recipes() -> str:
    """The first ``sh`` block of the README's Operations section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Operations\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the Operations section has no sh block"
    return match.group(1)


def without_venv(environ: dict[str, str]) -> dict[str, str]:
    """The environment of a new shell: the virtualenv's bin is not on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(part for part in environ.get("PATH", "").split(os.pathsep) if part != venv_bin)
    return {key: value for key, value in environ.items() if key != "VIRTUAL_ENV"} | {"PATH": path}


def other_database(redis_url: str) -> str:
    """The Redis URL with another database than the usual 0 (the recipes must not assume it)."""
    parts = urlsplit(redis_url)
    database = parts.path.strip("/") or "0"
    return urlunsplit(parts._replace(path="/1" if database == "0" else f"/{database}"))


@pytest.fixture
def recipes_redis(base_settings: Settings, key_prefix: str) -> Iterator[tuple[str, redis.Redis]]:
    url = other_database(base_settings.redis_url)
    client = redis.Redis.from_url(url)
    yield url, client
    for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def api(recipes_redis: tuple[str, redis.Redis], key_prefix: str, keys: KeyLayout) -> Iterator[str]:
    url, client = recipes_redis
    publish(client, keys, make_version("v1", range(200, 210), POSTS[::-1]))
    publish(client, keys, make_version("v2", range(200, 210), POSTS))
    client.set(keys.previous, "v1")
    client.sadd(keys.liked(USER), 7)
    with running_server({"POSTREC_PREFIX": key_prefix, "POSTREC_REDIS_URL": url}) as base_url:
        httpx.get(f"{base_url}/post/recommendations/", params={"id": USER}, timeout=10).raise_for_status()
        yield base_url


def test_the_operations_recipes_run_as_written(
    api: str, recipes_redis: tuple[str, redis.Redis], key_prefix: str, keys: KeyLayout
) -> None:
    url, client = recipes_redis
    port = api.rsplit(":", 1)[1]
    env = without_venv(dict(os.environ)) | {"POSTREC_REDIS_URL": url, "POSTREC_PREFIX": key_prefix, "PORT": port}
    script = "set -euo pipefail\n" + operations_recipes()
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()

    assert out[0] == "v2"  # the live version
    assert "control_percent" in out  # its meta
    assert _contains_run(out, [str(post) for post in make_version("v2", [USER], POSTS).lists[USER][:10]])
    assert "7" in out  # the liked set
    assert f"{key_prefix}:live" in done.stdout and f"{key_prefix}:batch" in done.stdout  # rq info
    assert any(line.startswith("postrec_http_responses_total") for line in out)  # the API's metrics
    assert client.get(keys.current) == b"v1"  # rollback


def _contains_run(lines: list[str], run: list[str]) -> bool:
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))
