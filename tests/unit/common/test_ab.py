"""The A/B split: deterministic, balanced, and reshuffled by a new salt."""

from __future__ import annotations

import hashlib

import pytest

from common.ab import CONTROL, TEST, assign_group

USERS = range(200, 100_200)


def test_same_user_same_group() -> None:
    assert [assign_group(u, "s", 50) for u in range(200, 1200)] == [assign_group(u, "s", 50) for u in range(200, 1200)]


def test_matches_the_documented_rule() -> None:
    for user in (200, 4_242, 168_552):
        bucket = int(hashlib.md5(f"{user}salt-x".encode(), usedforsecurity=False).hexdigest(), 16) % 100
        assert assign_group(user, "salt-x", 37) == (CONTROL if bucket < 37 else TEST)


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
