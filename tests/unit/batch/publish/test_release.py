"""Publishing logic that needs no server: version ids, which versions expire, the bulk RPUSH encoding."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from redis.connection import PythonRespSerializer

from batch.publish.rankings_wire import RankingWriter, resp_table
from batch.publish.release import REQUIRED_FIELDS, expired_versions, new_version_id
from common.keys import KeyLayout

NOW = datetime(2022, 1, 10, 12, tzinfo=UTC)


def test_version_id_is_as_of_in_utc_plus_six_hex_digits():
    version = new_version_id(datetime(2021, 12, 29))

    assert re.fullmatch(r"20211229T000000Z-[0-9a-f]{6}", version)
    assert new_version_id(datetime(2021, 12, 29)) != version


def meta(created: datetime, complete: bool = True) -> dict[str, str]:
    fields = dict.fromkeys(REQUIRED_FIELDS, "x") if complete else {}
    return {**fields, "created_at": created.isoformat()}


@pytest.mark.parametrize(
    ("previous_age_s", "expected"),
    [(10, []), (3600, ["v1", "v2"])],
)
def test_versions_older_than_previous_expire_once_previous_was_live_for_the_grace(previous_age_s, expected):
    versions = {
        "v1": meta(NOW - timedelta(days=3)),
        "v2": meta(NOW - timedelta(days=2)),
        "v3": meta(NOW - timedelta(seconds=previous_age_s)),
        "v4": meta(NOW),
    }

    assert expired_versions(versions, current="v4", previous="v3", grace_seconds=3600, now=NOW) == expected


@pytest.mark.parametrize(("age_s", "expired"), [(60, False), (7200, True)])
def test_abandoned_incomplete_versions_expire_after_the_grace(age_s, expired):
    versions = {"half": meta(NOW - timedelta(seconds=age_s), complete=False), "live": meta(NOW)}

    found = expired_versions(versions, current="live", previous=None, grace_seconds=3600, now=NOW)

    assert found == (["half"] if expired else [])


def test_current_and_previous_never_expire():
    versions = {"a": meta(NOW - timedelta(days=9)), "b": meta(NOW - timedelta(days=8))}

    assert expired_versions(versions, current="b", previous="a", grace_seconds=0, now=NOW) == []


def test_bulk_encoding_is_exactly_what_redis_py_sends():
    keys = KeyLayout("p")
    rankings = np.array([[7319, 5, 42], [1, -1, -1], [-1, -1, -1]], dtype=np.int32)
    writer = RankingWriter(client=None, keys=keys, version="v")  # type: ignore[arg-type]

    payload = writer._commands(resp_table(rankings), [200, 201, 202], rankings)

    encode = lambda v: v if isinstance(v, bytes) else str(v).encode()  # noqa: E731
    serializer = PythonRespSerializer(buffer_cutoff=10**9, encode=encode)
    expected = b"".join(
        b"".join(serializer.pack("RPUSH", keys.recs("v", user), *posts))
        for user, posts in [(200, [7319, 5, 42]), (201, [1])]
    )
    assert payload == expected
