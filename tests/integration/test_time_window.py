"""The time protocol's hold-out window, chosen from the likes of a real feed table."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from batch.evaluation.time_window import HoldoutWindowPolicy, choose_holdout_window, given_window
from common.errors import DataValidationError
from tests.integration.test_extract import POSTS, insert

END = datetime(2022, 1, 1)
USER_IDS = range(200, 210)
USERS = [(user, 20, "Moscow", "Russia", 0, 1, "Android", "ads") for user in USER_IDS]
# A first like a year before the end, so that the span does not cap the windows below.
FIRST = [(END - timedelta(days=365), 200, 1, "like", None)]


def likes_days_ago(days: list[float]) -> list[tuple]:
    """One view and one like per user, the like ``days[i]`` days before the end for user 200 + i."""
    rows = []
    for user, ago in zip(USER_IDS, days, strict=False):
        moment = END - timedelta(days=ago)
        rows += [(moment - timedelta(minutes=1), user, 1, "view", 1), (moment, user, 1, "like", None)]
    return rows


def test_a_week_that_holds_enough_users_stays_a_week(engine: Engine) -> None:
    insert(engine, USERS, POSTS, FIRST + likes_days_ago([1, 2, 3, 4, 5, 6]))

    window = choose_holdout_window(engine, END, HoldoutWindowPolicy(min_users=5, min_user_share=1.0))

    assert (window.start, window.length, window.reason) == (END - timedelta(days=7), timedelta(days=7), "least")
    assert window.users == 6


def test_users_active_long_ago_grow_the_window_by_whole_days_until_enough_liked(engine: Engine) -> None:
    # Bursty: each user's latest like is further back; the fourth most recent is 30.5 days ago.
    insert(engine, USERS, POSTS, FIRST + likes_days_ago([2, 12, 20, 30.5, 60, 90]))

    window = choose_holdout_window(engine, END, HoldoutWindowPolicy(min_users=4, min_user_share=1.0))

    assert (window.length, window.reason, window.users) == (timedelta(days=31), "users", 4)
    assert window.start == END - timedelta(days=31)


def test_a_small_feed_wants_its_share_of_the_users_not_the_fixed_count(engine: Engine) -> None:
    # 6 users liked; a third of them is 2, fewer than the 1,000 asked for.
    insert(engine, USERS, POSTS, FIRST + likes_days_ago([2, 12, 20, 30.5, 60, 90]))

    window = choose_holdout_window(engine, END, HoldoutWindowPolicy(min_users=1000, min_user_share=1 / 3))

    assert (window.length, window.reason, window.users) == (timedelta(days=12), "users", 2)


def test_the_window_stops_at_its_share_of_the_span(engine: Engine) -> None:
    # The likes span 100 days: a quarter is 25 days, short of the 60 days that 5 users would need.
    insert(engine, USERS, POSTS, likes_days_ago([2, 12, 20, 30.5, 60, 100]))

    window = choose_holdout_window(
        engine, END, HoldoutWindowPolicy(min_users=5, min_user_share=1.0, max_span_share=0.25)
    )

    assert (window.length, window.reason, window.users) == (timedelta(days=25), "cap", 3)


def test_a_given_window_counts_the_users_who_liked_in_it(engine: Engine) -> None:
    insert(engine, USERS, POSTS, FIRST + likes_days_ago([2, 12, 20, 30.5]))

    window = given_window(engine, END - timedelta(days=14), timedelta(days=7))

    assert (window.users, window.reason) == (1, "given")
    assert "7 days, 1 users with a like, sized_by=given" in window.describe()


def test_a_feed_without_likes_says_so(engine: Engine) -> None:
    insert(engine, USERS, POSTS, [(END - timedelta(days=1), 200, 1, "view", 0)])

    with pytest.raises(DataValidationError, match="no like before 2022-01-01"):
        choose_holdout_window(engine, END, HoldoutWindowPolicy())


@pytest.mark.parametrize(
    ("field", "value"), [("least_days", 0), ("min_users", 0), ("min_user_share", 0.0), ("max_span_share", 1.0)]
)
def test_a_policy_out_of_range_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        HoldoutWindowPolicy(**{field: value})  # type: ignore[arg-type]
