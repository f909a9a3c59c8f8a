"""Every `small` world, generated in memory, against the facts of the real dataset.

The expected values are the real dataset's facts, written out here by hand from the design's "Facts of the real
dataset" (not read from the generator's own tables), with tolerances stated per check: a quota the generator
fills exactly may be off by at most one from the real share times the count (rounding); sampled statistics get
about three standard deviations of noise at 3,000 users and 1,500 posts. Per-post like share = likes / feed rows
of the post (views and likes together), for posts with at least 200 views.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from batch.world.designs import LONG_PERIOD_START
from batch.world.designs import WORLDS as DESIGNS
from batch.world.truth import oracle_scores

pytestmark = pytest.mark.slow

USERS, POSTS = 3_000, 1_500
REAL_USERS, REAL_POSTS = 163_205, 7_023
COUNTRIES = {
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
RUSSIAN_CITIES = {"Moscow": 21_874, "Saint Petersburg": 6_904, "Novosibirsk": 1_987, "Yekaterinburg": 1_924}
TOPICS = {
    "movie": 3_000,
    "covid": 1_799,
    "business": 510,
    "sport": 510,
    "politics": 417,
    "tech": 401,
    "entertainment": 386,
}
MONTH_LIKE_RATES = {10: 0.094, 11: 0.125, 12: 0.14}
VIEW = pl.col("action") == "view"
LIKE = pl.col("action") == "like"
WORLDS = tuple(DESIGNS)
# The worlds of the 15-month period start a year before the real one; the others span the real three months.
LONG_PERIOD_WORLDS = tuple(name for name, design in DESIGNS.items() if design.period.start == LONG_PERIOD_START)
REAL_PERIOD_WORLDS = tuple(name for name in DESIGNS if name not in LONG_PERIOD_WORLDS)


@pytest.fixture(scope="module", params=WORLDS)
def world(request, small_world):
    return request.param, *small_world(request.param)


@pytest.fixture(scope="module")
def views(world):
    return world[3].filter(VIEW)


def _near_quota(count: int, real: int, real_total: int, total: int) -> bool:
    return abs(count - total * real / real_total) < 1


def test_users_have_the_real_demographic_quotas(world):
    users = world[1]
    assert users.height == USERS
    assert _near_quota(users["gender"].sum(), 89_980, REAL_USERS, USERS)
    assert _near_quota((users["os"] == "Android").sum(), 105_972, REAL_USERS, USERS)
    assert _near_quota((users["source"] == "ads").sum(), 101_685, REAL_USERS, USERS)
    counts = dict(users["country"].value_counts().iter_rows())
    assert set(counts) == set(COUNTRIES)
    for country, real in COUNTRIES.items():
        assert _near_quota(counts[country], real, REAL_USERS, USERS), country
    assert sorted(users["exp_group"].value_counts()["count"].to_list()) == [600] * 5


def test_user_ids_start_at_200_with_gaps(world):
    ids = world[1]["user_id"]
    assert ids.min() == 200
    assert ids.is_unique().all()
    assert ids.max() - ids.min() + 1 > ids.len()


def test_ages_have_the_real_summary(world):
    ages = world[1]["age"]
    assert ages.mean() == pytest.approx(27.2, abs=0.3)
    assert ages.median() == 24
    assert ages.mode().to_list() == [20]
    assert (ages.quantile(0.25, "lower"), ages.quantile(0.75, "lower")) == (19, 33)
    assert ages.min() >= 14
    assert ages.max() <= 95


def test_cities_match_the_real_shares_and_have_a_long_tail(world):
    users = world[1]
    russians = users.filter(pl.col("country") == "Russia")["city"]
    for city, count in RUSSIAN_CITIES.items():
        share = count / COUNTRIES["Russia"]
        # binomial noise at ~2,600 Russians: about 3 standard deviations
        assert (russians == city).mean() == pytest.approx(share, abs=3 * np.sqrt(share / 2600) + 0.002), city
    # 3,915 cities for 163,205 real users; a sample of 3,000 holds far fewer, but many more than the named ones.
    assert 300 < users["city"].n_unique() < 1_500


def test_posts_have_the_topic_proportions_and_id_gaps(world):
    posts = world[2]
    counts = dict(posts["topic"].value_counts().iter_rows())
    assert set(counts) == set(TOPICS)
    for topic, real in TOPICS.items():
        assert _near_quota(counts[topic], real, REAL_POSTS, POSTS), topic
    assert posts["post_id"].min() == 1
    assert posts["post_id"].max() > POSTS


def test_share_of_posts_ever_in_the_feed(world):
    shown = world[3]["post_id"].n_unique() / POSTS
    assert shown == pytest.approx(6_831 / 7_023, abs=0.005)


def test_views_per_user(world, views):
    per_user = views.group_by("user_id").len()["len"]
    assert per_user.min() >= 35
    assert per_user.mean() == pytest.approx(420, rel=0.04)
    assert per_user.median() == pytest.approx(375, rel=0.04)
    assert per_user.std() > 150  # heavy spread
    assert world[3].height / USERS == pytest.approx(470, rel=0.04)


def test_repeat_views(views):
    repeats = views.height - views.select(pl.struct("user_id", "post_id").n_unique()).item()
    assert repeats / views.height == pytest.approx(0.04, abs=0.004)


@pytest.mark.parametrize("name", REAL_PERIOD_WORLDS)
def test_like_rate_by_month_and_overall(name, small_world):
    views = small_world(name)[2].filter(VIEW)
    by_month = dict(views.group_by(pl.col("timestamp").dt.month()).agg(pl.col("target").mean()).iter_rows())
    for month, rate in MONTH_LIKE_RATES.items():
        assert by_month[month] == pytest.approx(rate, abs=0.005), month
    assert views["target"].mean() == pytest.approx(0.12, abs=0.005)


@pytest.mark.parametrize("name", LONG_PERIOD_WORLDS)
def test_long_period_like_rate_rises_over_its_months(name, small_world):
    """The bursty and fleeting worlds span 15 months instead of the real three."""
    views = small_world(name)[2].filter(VIEW)
    month = pl.col("timestamp").dt.strftime("%Y-%m")
    rates = views.group_by(month).agg(pl.col("target").mean()).sort("timestamp")["target"].to_numpy()
    assert len(rates) == 15
    # From the real October's 9.4% to the real December's 14%, rising: about 12% overall.
    assert rates[0] == pytest.approx(0.094, abs=0.006)
    assert rates[-1] == pytest.approx(0.14, abs=0.006)
    assert np.corrcoef(np.arange(15), rates)[0, 1] > 0.95
    assert views["target"].mean() == pytest.approx(0.12, abs=0.006)


def test_likes_are_more_likely_in_the_evening(views):
    hour = pl.col("timestamp").dt.hour()
    evening = views.filter(hour >= 18)["target"].mean()
    morning = views.filter(hour < 12)["target"].mean()
    assert evening - morning > 0.02


def test_views_happen_by_day_between_6_and_midnight_inside_the_period(world, views):
    first_day = datetime(2020, 10, 1) if world[0] in LONG_PERIOD_WORLDS else datetime(2021, 10, 1)
    assert views["timestamp"].dt.hour().min() == 6
    assert views["timestamp"].min() >= first_day.replace(hour=6)
    assert views["timestamp"].min() < first_day.replace(day=3)
    assert world[3]["timestamp"].max() < datetime(2021, 12, 30)
    assert world[3]["timestamp"].max() > datetime(2021, 12, 29)
    share_by_hour = views.group_by(pl.col("timestamp").dt.hour()).len().sort("timestamp")["len"] / views.height
    assert share_by_hour.max() / share_by_hour.min() > 2  # a daily shape, not flat


def test_like_delay_quartiles(world, views):
    likes = world[3].filter(LIKE)
    pairs = likes.join(views.filter(pl.col("target") == 1), on=["user_id", "post_id"], suffix="_view")
    delay = (pairs["timestamp"] - pairs["timestamp_view"]).dt.total_seconds()
    quartiles = (delay.quantile(0.25), delay.median(), delay.quantile(0.75))
    assert quartiles == pytest.approx((50, 93, 135), abs=3)


def test_per_post_like_share(world):
    name, _, _, feed, truth = world
    per_post = (
        feed.group_by("post_id").agg(views=VIEW.sum(), likes=LIKE.sum(), rows=pl.len()).filter(pl.col("views") >= 200)
    )
    if name == "popular":
        hits = truth.post_id[np.array(truth.params.group_fixed_shares)[truth.post_group] > 0]
        per_post = per_post.filter(~pl.col("post_id").is_in(hits.tolist()))
    share = per_post["likes"] / per_post["rows"]
    # Mean within 0.015 of 0.10 (in `popular`, the hits take about 3 points of the 12% like rate, so the other
    # posts' mean is lower: 0.075..0.10); the 1st..99th percentiles inside 0.045..0.17 (the real 0.063..0.143
    # widened by binomial noise at a few hundred views per post).
    if name == "popular":
        assert 0.075 <= share.mean() <= 0.10
    else:
        assert share.mean() == pytest.approx(0.10, abs=0.015)
    assert share.quantile(0.01) >= 0.045
    assert share.quantile(0.99) <= 0.17


def test_oracle_beats_popularity_by_far_on_hitrate_at_5(world):
    """The world is learnable: the truth ranks far better than a popularity list for the last week's likes."""
    _, _, _, feed, truth = world
    start, end = datetime(2021, 12, 23), datetime(2021, 12, 30)
    before, after = feed.filter(pl.col("timestamp") < start), feed.filter(pl.col("timestamp") >= start)
    targets = after.filter(LIKE)
    users = np.sort(targets["user_id"].unique().to_numpy())[:1000]
    liked, seen, target = (np.zeros((len(users), len(truth.post_id)), bool) for _ in range(3))
    for mask, frame in ((liked, before.filter(LIKE)), (seen, before), (target, targets)):
        frame = frame.filter(pl.col("user_id").is_in(users))
        mask[np.searchsorted(users, frame["user_id"].to_numpy()), truth.post_rows(frame["post_id"].to_numpy())] = 1
    like_rows = truth.post_rows(before.filter(LIKE)["post_id"].to_numpy())
    popularity = np.bincount(like_rows, minlength=len(truth.post_id))

    def hitrate(scores: np.ndarray) -> float:
        top = np.argsort(-np.where(seen, -np.inf, scores), axis=1)[:, :5]
        return float(np.take_along_axis(target, top, axis=1).any(axis=1).mean())

    oracle = hitrate(oracle_scores(truth, users, truth.post_id, start, end, seen_before=seen))
    popular = hitrate(np.tile(popularity.astype(float), (len(users), 1)))
    assert oracle > 0.6
    assert oracle > popular + 0.3
