"""An evaluation's versions are written whole and read by id, but never made live, and never logged as live."""

from __future__ import annotations

import logging

import pytest
import redis

from batch.publish.release import write_version
from common.keys import KeyLayout
from tests.integration.test_publish import assert_complete, make_release


def test_a_written_version_is_whole_but_not_live(
    redis_client: redis.Redis, keys: KeyLayout, caplog: pytest.LogCaptureFixture
) -> None:
    release = make_release()
    with caplog.at_level(logging.INFO):
        write_version(redis_client, keys, release)
    assert_complete(redis_client, keys, release)
    assert redis_client.get(keys.current) is None
    assert not [record for record in caplog.records if "version live" in record.getMessage()]
