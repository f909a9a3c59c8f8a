"""The family of synthetic worlds (``postrec seed --world NAME``): what each one plants, and the period it spans.

Every world shares the users, the posts and their texts, the facts of the real tables and the like model of
:mod:`batch.world.truth`; each changes one thing that decides which recommender wins:

* ``text``: users like sub-topics, and a post's sub-topic shows through its text. Text models win.
* ``collab``: users belong to communities that share tastes for hidden groups of posts; a post's group is
  drawn apart from its text, so only co-likes reveal it. Co-like models (ALS, EASE, item-kNN) win.
* ``popular``: a few hits, one released every few days, rise and fade within a week; most users see each one
  while it trends and more than half of those like it. Recency-weighted popularity is strong.
* ``bursty``: over fifteen months, most users are active on a few days of one burst; a global time cut
  catches few of them, a per-user hold-out catches all.
* ``fleeting``: ``collab``'s communities and hidden groups with ``bursty``'s activity: co-likes carry the taste and
  most users stay a few days. Of the family it is the nearest to the real dataset of the quality issue (users active
  a few days, EASE and ALS far above popularity), so no single planted structure decides it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from batch.world.facts import MONTH_LIKE_RATES, PERIOD_DAYS, PERIOD_START
from common.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Period:
    """The days a world's feed spans, and its like rate in each calendar month.

    Attributes:
        start: Midnight of the first day.
        days: Number of days.
        month_like_rates: Likes per view in each calendar month the period touches, in order.
    """

    start: datetime
    days: int
    month_like_rates: tuple[float, ...]

    def month_day_starts(self) -> tuple[int, ...]:
        """Day index (0 = ``start``) where each calendar month of the period starts; the first is 0."""
        starts, day = [0], self.start
        while True:
            length = calendar.monthrange(day.year, day.month)[1]
            day = day.replace(day=1) + timedelta(days=length)
            index = (day - self.start).days
            if index >= self.days:
                return tuple(starts)
            starts.append(index)


@dataclass(frozen=True, slots=True)
class Communities:
    """``collab``: users' tastes come from their community, over hidden groups of posts within each topic.

    Attributes:
        count: Number of user communities.
        size_exponent: Community sizes fall off as 1 / rank ** this.
        demographic_sd: Spread of the per-community demographic coefficients (membership leans on demographics).
        profile_sd: Spread of a community's taste logit for each group.
        individual_sd: Spread of a user's own deviation from the community's profile.
        groups_per_topic: Hidden groups of each topic (``common.columns.TOPICS`` order).
    """

    count: int = 16
    size_exponent: float = 0.6
    demographic_sd: float = 0.4
    profile_sd: float = 1.2
    individual_sd: float = 0.45
    groups_per_topic: tuple[int, ...] = (3, 6, 3, 10, 3, 3, 3)


@dataclass(frozen=True, slots=True)
class Hits:
    """``popular``: a few posts that trend in everyone's feed, one after another.

    Attributes:
        count: Number of hits over the period (fewer at scales with few posts).
        posts_per_hit: At least this many posts per hit.
        feed_share: Share of every user's views that shows the trending hits.
        like_rate: Likes per view of a hit.
        trend_days: Range of the hits' decay time constants, in days.
        rise_days: Days a post's trend takes to rise to its peak (every post of the world).
        trend_amplitude: A post's extra exposure at the peak of its trend (every post of the world; the ``text``
            world's is 150): hits trend far above the others, then fade to nearly nothing.
        taste_shrink: Scales users' individual taste for the trending group (hits please nearly everyone).
    """

    count: int = 20
    posts_per_hit: int = 10
    feed_share: float = 0.06
    like_rate: float = 0.6
    trend_days: tuple[float, float] = (2.0, 5.0)
    rise_days: float = 1.5
    trend_amplitude: float = 1000.0
    taste_shrink: float = 0.3


@dataclass(frozen=True, slots=True)
class Bursts:
    """``bursty``: most users visit on a few days close together; a few regulars visit all along.

    Attributes:
        bursty_share: Share of users who are active in one burst.
        extra_days_mean: Mean number of active days after a burst's first (Poisson).
        max_days: Most active days of a bursty user.
        burst_window_days: A burst's later days fall within this many days after its first.
        regular_days: Range of the number of active days of a regular user, spread over the whole period.
        day_weight_shape: Gamma shape of the share of a user's views on each of its active days.
    """

    bursty_share: float = 0.85
    extra_days_mean: float = 2.0
    max_days: int = 8
    burst_window_days: int = 14
    regular_days: tuple[int, int] = (15, 40)
    day_weight_shape: float = 2.0


@dataclass(frozen=True, slots=True)
class WorldDesign:
    """One world of the family: its period and the structure it plants on top of the ``text`` world's."""

    name: str
    summary: str
    period: Period
    communities: Communities | None = None
    hits: Hits | None = None
    bursts: Bursts | None = None


REAL_PERIOD: Final = Period(PERIOD_START, PERIOD_DAYS, MONTH_LIKE_RATES)
LONG_PERIOD_START: Final = datetime(2020, 10, 1)
LONG_PERIOD_MONTHS: Final = 15


def _long_period() -> Period:
    """2020-10-01 .. 2021-12-29 (455 days): the real period's last day, a year earlier start; the like rate rises
    month by month from the real October's rate to the real December's."""
    first, last = MONTH_LIKE_RATES[0], MONTH_LIKE_RATES[-1]
    steps = LONG_PERIOD_MONTHS - 1
    rates = tuple(round(first + (last - first) * month / steps, 4) for month in range(LONG_PERIOD_MONTHS))
    days = (PERIOD_START + timedelta(days=PERIOD_DAYS) - LONG_PERIOD_START).days
    return Period(LONG_PERIOD_START, days, rates)


WORLDS: Final = {
    "text": WorldDesign("text", "sub-topic tastes, sub-topics visible in the text", REAL_PERIOD),
    "collab": WorldDesign(
        "collab", "community tastes for hidden groups of posts, visible in co-likes only", REAL_PERIOD, Communities()
    ),
    "popular": WorldDesign(
        "popular", "a few trending hits liked by most users, rising and fading", REAL_PERIOD, hits=Hits()
    ),
    "bursty": WorldDesign(
        "bursty", "most users active on a few days of a 15-month span", _long_period(), bursts=Bursts()
    ),
    "fleeting": WorldDesign(
        "fleeting",
        "collab's community tastes with bursty's few active days over 15 months",
        _long_period(),
        Communities(),
        bursts=Bursts(),
    ),
}
DEFAULT_WORLD: Final = "text"


def resolve_world(name: str) -> WorldDesign:
    """The world called ``name``; raises ConfigError listing the valid ones."""
    if name not in WORLDS:
        raise ConfigError(f"unknown world {name!r}: use one of {', '.join(WORLDS)}")
    return WORLDS[name]
