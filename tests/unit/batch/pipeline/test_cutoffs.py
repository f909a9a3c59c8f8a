"""Windows chosen from the likes: enough users and labels on bursty, long-span and few-day feeds alike."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from batch.pipeline.cutoffs import WindowPolicy, choose_windows
from common.columns import Col
from common.errors import DataValidationError

START = datetime(2021, 1, 1)


def shares(**fields: float) -> WindowPolicy:
    """A policy sized by its shares and users alone (no floor of likes, no share of all users in the label)."""
    defaults = {"valid_min_likes": 1, "label_min_likes": 1, "label_user_share": 0.0}
    return WindowPolicy(**{**defaults, **fields})  # type: ignore[arg-type]


def likes_of(rows: list[tuple[datetime, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32}, orient="row")


def users_between(likes: pl.DataFrame, start: datetime, end: datetime) -> int:
    inside = likes.filter((pl.col(Col.TIMESTAMP) >= start) & (pl.col(Col.TIMESTAMP) < end))
    return inside[Col.USER_ID].n_unique()


def test_windows_take_the_shares_of_the_most_recent_likes():
    # One like a day by ten users: validation = the last like, label = the two before it.
    likes = likes_of([(START + timedelta(days=day), day) for day in range(10)])
    policy = shares(valid_share=0.1, label_share=0.2, min_users=1, max_share=0.6)

    chosen = choose_windows(likes, START + timedelta(days=10), policy)

    assert chosen.windows.valid_start == START + timedelta(days=9)
    assert chosen.windows.label_start == START + timedelta(days=7)
    assert (chosen.valid.likes, chosen.label.likes, chosen.history.likes) == (1, 2, 7)
    assert chosen.valid.reason == chosen.label.reason == "share"


def bursty_feed() -> pl.DataFrame:
    """400 days; each of 800 users likes 3 posts on one day of its own (2 users a day); 5 heavy users like
    2 posts a day over the last 40 days (most of the recent likes)."""
    rows = [(START + timedelta(days=user // 2, hours=h), user) for user in range(800) for h in (9, 12, 18)]
    heavy = [
        (START + timedelta(days=day, hours=10, minutes=i), 10_000 + user)
        for user in range(5)
        for day in range(360, 400)
        for i in range(2)
    ]
    return likes_of(rows + heavy)


def test_bursty_feed_windows_grow_until_they_hold_enough_users():
    likes, as_of = bursty_feed(), START + timedelta(days=400)
    policy = shares(valid_share=0.1, label_share=0.2, min_users=60)

    chosen = choose_windows(likes, as_of, policy)

    windows = chosen.windows
    # A week ending at as_of holds the 5 heavy users and 14 bursty ones; the windows hold 60 users each.
    assert users_between(likes, as_of - timedelta(days=7), as_of) == 19
    assert chosen.valid.reason == "users"
    assert users_between(likes, windows.valid_start, as_of) == chosen.valid.users >= 60
    assert users_between(likes, windows.label_start, windows.valid_start) == chosen.label.users >= 60
    assert chosen.history.likes >= 0.4 * likes.height


def test_windows_stop_at_the_cap_and_keep_history_when_users_are_too_few():
    likes, as_of = bursty_feed(), START + timedelta(days=400)

    policy = shares(valid_share=0.1, label_share=0.2, min_users=5_000, min_user_share=1.0)

    chosen = choose_windows(likes, as_of, policy)

    assert chosen.valid.reason == chosen.label.reason == "cap"
    assert chosen.valid.likes + chosen.label.likes <= 0.6 * likes.height
    assert chosen.history.likes >= 0.4 * likes.height and chosen.history.users > 0


def test_long_span_windows_follow_the_likes_not_the_calendar():
    # Three years, one like an hour by 500 rotating users: windows scale with the data (a week would be 0.6%).
    hours = 3 * 365 * 24
    likes = likes_of([(START + timedelta(hours=h), h % 500) for h in range(hours)])
    as_of = START + timedelta(hours=hours)

    chosen = choose_windows(likes, as_of, shares(valid_share=0.1, label_share=0.2, min_users=100))

    span = as_of - START
    assert abs(as_of - chosen.windows.valid_start - 0.1 * span) <= timedelta(hours=1)
    assert abs(chosen.windows.valid_start - chosen.windows.label_start - 0.2 * span) <= timedelta(hours=1)
    assert chosen.valid.users == chosen.label.users == 500


def test_a_feed_of_three_days_gets_windows_inside_it():
    likes = likes_of([(START + timedelta(minutes=m), m % 50) for m in range(3 * 24 * 60)])

    chosen = choose_windows(likes, START + timedelta(days=3), WindowPolicy(min_users=20))

    assert START < chosen.windows.label_start < chosen.windows.valid_start < START + timedelta(days=3)
    assert chosen.valid.users == chosen.label.users == 50 and chosen.history.likes > 0


def test_a_small_feed_wants_a_tenth_of_its_users_per_window():
    # 805 users liked anything: each window wants 81 of them, not 300 (which would take 90% of the likes).
    likes, as_of = bursty_feed(), START + timedelta(days=400)

    chosen = choose_windows(likes, as_of, shares(valid_share=0.01, label_share=0.02, max_share=0.9))

    assert chosen.valid.reason == chosen.label.reason == "users"
    assert 81 <= chosen.valid.users < 85 and 81 <= chosen.label.users < 85
    assert chosen.history.likes > 0.6 * likes.height


def test_a_small_feed_gets_a_floor_of_likes_per_window():
    # 2,800 likes: 5% would be 140 likes; the floors ask for 400 and 800.
    likes, as_of = bursty_feed(), START + timedelta(days=400)

    chosen = choose_windows(likes, as_of, WindowPolicy(min_users=1, label_user_share=0.0))

    assert 400 <= chosen.valid.likes < 410 and 800 <= chosen.label.likes < 810


def test_a_bursty_feeds_label_window_grows_to_a_share_of_all_users():
    # 805 users liked anything, 3 likes each on a day of their own: 30% of them is 242 users, about 121 days of
    # likes; the validation window keeps its own rule (a tenth of the users).
    likes, as_of = bursty_feed(), START + timedelta(days=400)
    policy = shares(valid_share=0.01, label_share=0.02, max_share=0.9, label_user_share=0.3)

    chosen = choose_windows(likes, as_of, policy)

    assert chosen.label.reason == "users" and 242 <= chosen.label.users < 246
    assert 81 <= chosen.valid.users < 85
    assert users_between(likes, chosen.windows.label_start, chosen.windows.valid_start) == chosen.label.users


def test_where_users_come_back_the_share_of_all_users_changes_nothing():
    # 50 users liking in turn every minute for 3 days: any window of a few hours holds all of them.
    likes = likes_of([(START + timedelta(minutes=m), m % 50) for m in range(3 * 24 * 60)])
    as_of = START + timedelta(days=3)

    with_share = choose_windows(likes, as_of, WindowPolicy(min_users=20, label_user_share=0.3))
    without = choose_windows(likes, as_of, WindowPolicy(min_users=20, label_user_share=0.0))

    assert with_share.windows == without.windows and with_share.label.reason == "share"


def test_a_label_user_share_outside_0_to_1_is_refused():
    with pytest.raises(ValueError, match="label_user_share"):
        WindowPolicy(label_user_share=1.5)


def test_too_few_likes_are_refused_with_their_count():
    likes = likes_of([(START, 1), (START + timedelta(hours=1), 2)])

    with pytest.raises(DataValidationError, match="2 likes before"):
        choose_windows(likes, START + timedelta(days=1), WindowPolicy())


@pytest.mark.parametrize(("valid", "label", "most"), [(0.0, 0.2, 0.6), (0.3, 0.4, 0.6), (0.1, 0.2, 1.0)])
def test_impossible_shares_are_refused(valid, label, most):
    with pytest.raises(ValueError, match="window shares"):
        shares(valid_share=valid, label_share=label, max_share=most)
