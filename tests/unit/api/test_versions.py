"""A live version's response body and age."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from api.versions import LiveVersion
from common.payloads import Post, Recommendations, VersionMeta


def live(created_at: str = "2021-12-30T03:00:00+00:00") -> LiveVersion:
    meta = VersionMeta(
        version="v1",
        as_of="2021-12-29T23:59:59",
        created_at=created_at,
        models={},
        salt="s",
        control_percent=50,
        k=200,
        users=1,
        posts=3,
    )
    posts = [Post(1, 'say "hi"\nnow', "movie"), Post(2, "два", "covid"), Post(3, "c", "tech")]
    return LiveVersion("v1", meta, {p.id: msgspec.json.encode(p) for p in posts})


@pytest.mark.parametrize("group", ["control", "test"])
def test_body_decodes_to_recommendations_in_the_given_order(group: str) -> None:
    body = live().response_body(group, [b"3", b"1"])
    assert msgspec.json.decode(body, type=Recommendations) == Recommendations(
        exp_group=group, recommendations=[Post(3, "c", "tech"), Post(1, 'say "hi"\nnow', "movie")]
    )


def test_empty_answer_is_valid_json() -> None:
    assert msgspec.json.decode(live().response_body("test", [])) == {"exp_group": "test", "recommendations": []}


def test_post_missing_from_the_catalog_is_left_out() -> None:
    body = live().response_body("test", [b"2", b"999"])
    assert [p.id for p in msgspec.json.decode(body, type=Recommendations).recommendations] == [2]


@pytest.mark.parametrize(
    ("created_at", "age"),
    [("2021-12-30T03:00:00+00:00", 3600.0), ("2021-12-30T03:00:00", 3600.0), ("2021-12-30T05:00:00+02:00", 3600.0)],
)
def test_age_from_created_at(created_at: str, age: float) -> None:
    assert live(created_at).age_s(datetime(2021, 12, 30, 4, 0, tzinfo=UTC)) == age


def test_unparsable_created_at_has_no_age() -> None:
    assert live("yesterday").age_s(datetime.now(UTC)) is None
