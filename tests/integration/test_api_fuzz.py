"""Fuzz every operation of the OpenAPI schema against a real server: never a 5xx, always a documented answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from common.keys import KeyLayout
from common.settings import Settings
from tests.api_fixtures import make_version, publish, running_server

CASES = [
    ("/post/recommendations", GenerationMode.POSITIVE),
    ("/post/recommendations", GenerationMode.NEGATIVE),  # malformed parameters: 400s, never 5xx
    ("/health", GenerationMode.POSITIVE),
    ("/metrics", GenerationMode.POSITIVE),  # operations without parameters have no negative cases
]


@pytest.fixture(scope="module")
def server(base_settings: Settings) -> Iterator[tuple[str, dict[str, object]]]:
    """A server on a published version (users 0..299, so generated ids hit real lists too) and its schema."""
    keys = KeyLayout(f"postrec_test_{uuid.uuid4().hex[:12]}")
    client = redis.Redis.from_url(base_settings.redis_url)
    publish(client, keys, make_version("v1", range(300), list(range(1, 101))))
    env = {"POSTREC_PREFIX": keys.prefix, "POSTREC_REDIS_URL": base_settings.redis_url}
    try:
        with running_server(env | {"POSTREC_API_REDIS_TIMEOUT_MS": "2000"}) as url:
            yield url, httpx.get(f"{url}/schema/openapi.json").json()
    finally:
        for key in client.scan_iter(match=f"{keys.prefix}:*"):
            client.delete(key)
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize(("path", "mode"), CASES)
def test_fuzzed_requests_get_documented_non_5xx_answers(
    server: tuple[str, dict[str, object]], path: str, mode: GenerationMode
) -> None:
    base_url, raw_schema = server
    operation = schemathesis.openapi.from_dict(raw_schema)[path]["GET"]

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        response = case.call(base_url=base_url)
        assert response.status_code < 500, f"{case.path} {case.query}: {response.status_code} {response.text}"
        case.validate_response(response)

    check()
