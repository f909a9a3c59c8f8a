"""The facts of the real dataset (DESIGN.md) that the synthetic world is calibrated to, and the world's scales.

Everything here is a constant: the generator modules read them, the calibration test checks the output against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

PERIOD_START: Final = datetime(2021, 10, 1)
PERIOD_DAYS: Final = 90
"""2021-10-01 .. 2021-12-29, both included."""
FIRST_MINUTE: Final = 6 * 60
"""Views happen from 06:00 to 23:59."""
MONTH_OF_DAY_STARTS: Final = (0, 31, 61)
"""Day index where October, November and December start."""
MONTH_LIKE_RATES: Final = (0.094, 0.125, 0.14)
"""Likes per view in October, November, December."""

FULL_USERS: Final = 163_205
FULL_USER_ID_RANGE: Final = (200, 168_552)
FULL_POST_ID_RANGE: Final = (1, 7_319)
GENDER_ONE_SHARE: Final = 89_980 / FULL_USERS
ANDROID_SHARE: Final = 105_972 / FULL_USERS
ADS_SHARE: Final = 101_685 / FULL_USERS
EXP_GROUPS: Final = 5
COUNTRY_COUNTS: Final = {
    "Russia": 143_035,
    "Ukraine": 8_273,
    "Belarus": 3_293,
    "Kazakhstan": 3_172,
    "Turkey": 1_606,
    "Finland": 1_599,
    "Azerbaijan": 1_542,
    "Estonia": 178,
    "Latvia": 175,
    "Cyprus": 170,
    "Switzerland": 162,
}
FULL_DISTINCT_CITIES: Final = 3_915
RUSSIAN_CITY_COUNTS: Final = {"Moscow": 21_874, "Saint Petersburg": 6_904, "Novosibirsk": 1_987, "Yekaterinburg": 1_924}
AGE_MEAN: Final = 27.2
AGE_MEDIAN: Final = 24
AGE_MODE: Final = 20
AGE_QUARTILES: Final = (19, 33)
AGE_RANGE: Final = (14, 95)

TOPIC_COUNTS: Final = {
    "movie": 3_000,
    "covid": 1_799,
    "business": 510,
    "sport": 510,
    "politics": 417,
    "tech": 401,
    "entertainment": 386,
}
FULL_POSTS: Final = sum(TOPIC_COUNTS.values())
SHOWN_POST_SHARE: Final = 6_831 / FULL_POSTS

MIN_VIEWS: Final = 35
MEAN_VIEWS: Final = 420
MEDIAN_VIEWS: Final = 375
REPEAT_VIEW_SHARE: Final = 0.04
LIKE_DELAY_QUARTILES: Final = (50.0, 93.0, 135.0)
"""Seconds from a view to its like: first quartile, median, third quartile."""
POST_LIKE_SHARE_MEAN: Final = 0.10
POST_LIKE_SHARE_RANGE: Final = (0.063, 0.143)
"""Per post, likes / feed rows (views and likes), for posts with enough views."""


@dataclass(frozen=True, slots=True)
class WorldScale:
    """How big a world to generate.

    Attributes:
        name: The ``--scale`` value.
        users: Number of users.
        posts: Number of posts, split over topics in the real proportions.
        views_factor: Multiplies the variable part of views per user; below 1 only where posts are too few for
            the real number of distinct views per user.
    """

    name: str
    users: int
    posts: int
    views_factor: float = 1.0


SCALES: Final = {
    "tiny": WorldScale("tiny", users=300, posts=150, views_factor=0.12),
    "small": WorldScale("small", users=3_000, posts=1_500),
    "medium": WorldScale("medium", users=20_000, posts=FULL_POSTS),
    "full": WorldScale("full", users=FULL_USERS, posts=FULL_POSTS),
}
