"""The API against the real Redis: the serving rule, the A/B group, the served log, errors, health and metrics."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import anyio
import msgspec
import pytest
import redis
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.ranking import first_unliked
from common.ab import assign_group
from common.keys import KeyLayout
from common.payloads import Recommendations
from common.settings import Settings
from tests.api_fixtures import Version, like, make_version, publish, wait_for_entries

pytestmark = pytest.mark.anyio

USERS = range(200, 240)
POSTS = list(range(1, 61))


@pytest.fixture
def api_settings(base_settings: Settings, key_prefix: str) -> Settings:
    return replace(base_settings, prefix=key_prefix, k=50, api_redis_timeout_ms=1000)  # no flakes on a busy box


@pytest.fixture
def version() -> Version:
    return make_version("v1", USERS, POSTS, list_length=20, salt="meta-salt", control_percent=30)


@pytest.fixture
def published(redis_client: redis.Redis, keys: KeyLayout, version: Version) -> Iterator[Version]:
    publish(redis_client, keys, version)
    yield version


@pytest.fixture
async def bare_client(api_settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """A client of an app started while nothing is published."""
    async with AsyncTestClient(app=create_app(api_settings)) as test_client:
        yield test_client


@pytest.fixture
async def client(api_settings: Settings, published: Version) -> AsyncIterator[AsyncTestClient]:
    """A client of an app started after the fixture version was published."""
    async with AsyncTestClient(app=create_app(api_settings)) as test_client:
        yield test_client


async def recommend(client: AsyncTestClient, **params: object) -> Recommendations:
    response = await client.get("/post/recommendations/", params=params)
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=Recommendations)


async def test_serves_the_head_of_the_users_list_with_full_posts(client: AsyncTestClient, published: Version) -> None:
    answer = await recommend(client, id=205)
    assert [p.id for p in answer.recommendations] == list(published.lists[205][:5])
    assert answer.recommendations[0] == published.posts[answer.recommendations[0].id]


async def test_liked_posts_are_never_returned(
    client: AsyncTestClient, published: Version, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    for user in USERS:
        like(redis_client, keys, user, *published.lists[user][user % 3 : 10 : 2])
    for user in USERS:
        liked = {int(p) for p in redis_client.smembers(keys.liked(user))}
        answer = await recommend(client, id=user, limit=8)
        ids = [p.id for p in answer.recommendations]
        assert not liked & set(ids)
        assert ids == first_unliked(published.lists[user], liked, 8, published.popular)


async def test_a_like_after_publishing_takes_effect_on_the_next_request(
    client: AsyncTestClient, published: Version, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    first = await recommend(client, id=210, limit=3)
    like(redis_client, keys, 210, first.recommendations[0].id)
    second = await recommend(client, id=210, limit=3)
    assert [p.id for p in second.recommendations] == [p.id for p in first.recommendations[1:]] + [
        published.lists[210][3]
    ]


async def test_short_list_is_topped_up_from_popular_without_liked_or_repeats(
    client: AsyncTestClient, published: Version, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    user = 220  # list: posts 41..60; popular: 60, 59, ..., 1
    assert list(published.lists[user]) == list(range(41, 61))
    like(redis_client, keys, user, *range(41, 59), 39)
    answer = await recommend(client, id=user, limit=6)
    assert [p.id for p in answer.recommendations] == [59, 60, 40, 38, 37, 36]


@pytest.mark.parametrize(("params", "expected"), [({}, 5), ({"limit": 1}, 1), ({"limit": 20}, 20), ({"limit": 50}, 50)])
async def test_limit_counts_posts(
    client: AsyncTestClient, published: Version, params: dict[str, int], expected: int
) -> None:
    answer = await recommend(client, id=230, **params)
    assert len(answer.recommendations) == expected
    assert len({p.id for p in answer.recommendations}) == expected


async def test_exp_group_follows_the_versions_salt_and_split(client: AsyncTestClient, published: Version) -> None:
    for user in USERS:
        answer = await recommend(client, id=user)
        assert answer.exp_group == assign_group(user, "meta-salt", 30)
    groups = {(await recommend(client, id=u)).exp_group for u in USERS}
    assert groups == {"control", "test"}


async def test_time_is_accepted_and_does_not_change_the_ranking(client: AsyncTestClient, published: Version) -> None:
    plain = await recommend(client, id=212)
    for stamp in ("2021-12-29 23:51:00", "2021-10-01T06:01:00", "2022-01-05T10:00:00+03:00", "2021-11-11T11:11:11Z"):
        assert await recommend(client, id=212, time=stamp) == plain


async def test_each_answer_is_logged_in_the_served_stream(
    client: AsyncTestClient, published: Version, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    answer = await recommend(client, id=215, limit=4, time="2021-12-01T10:00:00")
    await recommend(client, id=216)
    entries = wait_for_entries(redis_client, keys, 2)
    assert len(entries) == 2
    fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
    assert fields == {
        "time": "2021-12-01T10:00:00",
        "user": "215",
        "group": answer.exp_group,
        "version": "v1",
        "posts": ",".join(str(p.id) for p in answer.recommendations),
    }
    assert entries[1][1][b"time"] == b""


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", "id"),
        ("?id=abc", "id"),
        ("?id=1.5", "id"),
        ("?id=", "id"),
        ("?id=205&limit=0", "limit"),
        ("?id=205&limit=51", "limit"),
        ("?id=205&limit=five", "limit"),
        ("?id=205&time=yesterday", "time"),
        ("?id=205&time=2021-13-01T00:00:00", "time"),
        ("?id=205&time=0.0", "time"),  # Litestar alone would read a bare number as epoch seconds
        ("?id=205&time=1638352800", "time"),
        ("?id=1e3", "id"),  # Litestar alone reads it as user 1000
        ("?id=205.0", "id"),
        ("?id=-5", "id"),
        ("?id=205&limit=1e1", "limit"),
        ("?id=205&limit=5.0", "limit"),
        ("?id=205&id=206", "id"),  # Litestar alone takes the last one
        ("?id=205&limit=2&limit=3", "limit"),
        ("?id=205&time=2021-12-30&time=2021-12-31", "time"),
        ("?id=" + "9" * 4300, "id"),
        ("?id=" + "9" * 17, "id"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    client: AsyncTestClient, published: Version, query: str, parameter: str
) -> None:
    response = await client.get(f"/post/recommendations/{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert f"query parameter '{parameter}'" in body["message"]
    assert "ParamType" not in body["message"]
    assert "99999" not in body["message"]  # a huge id is not echoed back


async def test_date_only_time_is_accepted(client: AsyncTestClient, published: Version) -> None:
    assert await recommend(client, id=212, time="2021-12-30") == await recommend(client, id=212)


async def test_other_methods_are_405_with_an_allow_header(client: AsyncTestClient, published: Version) -> None:
    for response in (await client.head("/post/recommendations/?id=205"), await client.post("/health")):
        assert response.status_code == 405
        assert "GET" in response.headers["allow"]


async def test_metrics_content_type_names_the_charset_once(client: AsyncTestClient, published: Version) -> None:
    content_type = (await client.get("/metrics")).headers["content-type"]
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"


async def test_unknown_user_is_404(client: AsyncTestClient, published: Version) -> None:
    response = await client.get("/post/recommendations/", params={"id": 99})
    assert response.status_code == 404
    assert response.json() == {"status": 404, "message": "user 99 is not in the user set of version v1"}


async def test_nothing_published_is_503_saying_to_build(bare_client: AsyncTestClient) -> None:
    response = await bare_client.get("/post/recommendations/", params={"id": 205})
    assert response.status_code == 503
    assert "postrec build" in response.json()["message"]
    health = await bare_client.get("/health")
    assert health.status_code == 503
    body = health.json()
    assert (body["status"], body["version"], body["redis"], body["redis_version"]) == ("unavailable", None, True, None)
    assert body["watcher_error"] is None


async def test_unexpected_failure_is_a_clean_500(
    client: AsyncTestClient, published: Version, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    redis_client.lset(keys.recs("v1", 205), 0, "not-a-post-id")
    response = await client.get("/post/recommendations/", params={"id": 205})
    assert response.status_code == 500
    assert response.json() == {"status": 500, "message": "internal error: the server logged the details"}


async def test_health_reports_the_live_version(client: AsyncTestClient, published: Version) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["version"], body["redis"], body["redis_version"]) == ("ok", "v1", True, "v1")
    assert body["version_age_s"] > 0
    assert body["watcher_error"] is None


async def test_metrics_count_responses_errors_and_name_the_version(client: AsyncTestClient, published: Version) -> None:
    for query in ("?id=205", "?id=206", "?id=99", "?id=x"):
        await client.get(f"/post/recommendations/{query}")
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples['postrec_http_responses_total{status="200"}'] == 2
    assert samples['postrec_http_responses_total{status="404"}'] == 1
    assert samples['postrec_http_responses_total{status="400"}'] == 1
    assert samples['postrec_errors_total{kind="UnknownUserError"}'] == 1
    assert samples['postrec_http_request_duration_seconds_bucket{le="+Inf"}'] == 4
    assert samples["postrec_http_request_duration_seconds_count"] == 4
    assert samples['postrec_live_version{version="v1"}'] == 1


async def test_openapi_schema_documents_the_endpoint(client: AsyncTestClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    operation = schema["paths"]["/post/recommendations"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["id"]["required"] is True
    assert params["limit"]["schema"]["maximum"] == 50
    assert "does not change the ranking" in params["time"]["description"]
    assert set(operation["responses"]) == {"200", "400", "404", "503"}
    assert schema["components"]["schemas"]["Recommendations"]["required"] == ["exp_group", "recommendations"]


def _samples(text: str) -> dict[str, float]:
    """Prometheus text -> {name{labels without pid}: value}."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[re.sub(r'pid="\d+",?', "", name).replace("{}", "")] = float(value)
    return samples


async def test_health_is_stale_when_redis_names_a_version_the_watcher_cannot_load(
    client: AsyncTestClient, published: Version, redis_client: redis.Redis, keys: KeyLayout
) -> None:
    redis_client.set(keys.current, "v9")  # a version with no keys: the watcher fails to load it and keeps v1
    for _ in range(100):  # until the watcher has polled (bounded; not a timing check)
        body = (await client.get("/health")).json()
        if body["watcher_error"] is not None:
            break
        await anyio.sleep(0.05)
    assert (body["status"], body["version"], body["redis_version"]) == ("stale", "v1", "v9")
    assert "version v9 has no meta" in body["watcher_error"]
