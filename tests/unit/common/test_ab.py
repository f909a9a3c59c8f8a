"""The A/B split: deterministic, balanced, and reshuffled by a new salt."""

from __future__ import annotations

import pytest

from common.ab import CONTROL, TEST, assign_group

USERS = range(200, 100_200)


# Buckets of the documented rule, int(md5(f"{user_id}{salt}").hexdigest(), 16) % 100, worked out outside this code
# (`echo -n 200postrec-ab-1 | md5sum` gives 77fe...a104, whose value mod 100 is 60): the API, the batch and any
# external reader of the experiment must agree with these, so they are written down, not recomputed.
KNOWN_BUCKETS = [
    (200, "postrec-ab-1", 60),
    (201, "postrec-ab-1", 98),
    (4_242, "postrec-ab-1", 63),
    (168_552, "postrec-ab-1", 92),
    (200, "salt-x", 16),
    (201, "salt-x", 94),
    (4_242, "salt-x", 90),
    (168_552, "salt-x", 48),
]


@pytest.mark.parametrize(("user", "salt", "bucket"), KNOWN_BUCKETS)
def test_groups_follow_the_documented_buckets(user: int, salt: str, bucket: int) -> None:
    # Just below, at and just above the bucket: control takes buckets strictly below the percent.
    assert assign_group(user, salt, bucket) == TEST
    assert assign_group(user, salt, bucket + 1) == CONTROL


@pytest.mark.parametrize("percent", [10, 50, 90])
def test_split_follows_the_percent_on_100k_users(percent: int) -> None:
    control = sum(assign_group(u, "postrec-ab-1", percent) == CONTROL for u in USERS)
    assert abs(control / len(USERS) - percent / 100) < 0.01


@pytest.mark.parametrize(("percent", "group"), [(0, TEST), (100, CONTROL)])
def test_extreme_percents_put_everyone_in_one_group(percent: int, group: str) -> None:
    assert {assign_group(u, "s", percent) for u in range(200, 2200)} == {group}


def test_new_salt_reshuffles_about_half_the_users() -> None:
    moved = sum(assign_group(u, "salt-a", 50) != assign_group(u, "salt-b", 50) for u in USERS)
    assert 0.45 < moved / len(USERS) < 0.55
