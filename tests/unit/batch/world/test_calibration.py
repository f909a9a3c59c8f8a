"""The `small` world, generated in memory, against every calibrated fact of DESIGN.md.

Tolerances (stated per check below) allow for sampling noise at 3,000 users and 1,500 posts; quotas that the
generator apportions exactly are checked exactly. Per-post like share = likes / feed rows of the post (views and
likes together), for posts with at least 200 views.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from batch.world import facts
from batch.world.cities import expected_distinct_cities
from batch.world.dist import apportion
from batch.world.generator import generate_tables
from batch.world.truth import oracle_scores
from batch.world.users import city_tables, country_quota
from common.columns import TOPICS

pytestmark = pytest.mark.slow
SCALE = facts.SCALES["small"]
VIEW = pl.col("action") == "view"


@pytest.fixture(scope="module")
def world():
    users, posts, feed, truth = generate_tables("small", 42)
    return users, posts, feed, truth


@pytest.fixture(scope="module")
def views(world):
    return world[2].filter(VIEW)


def test_user_quotas_are_exact(world):
    users = world[0]
    n = SCALE.users
    assert users.height == n
    assert users["gender"].sum() == apportion([facts.GENDER_ONE_SHARE, 1 - facts.GENDER_ONE_SHARE], n)[0]
    assert (users["os"] == "Android").sum() == apportion([facts.ANDROID_SHARE, 1 - facts.ANDROID_SHARE], n)[0]
    assert (users["source"] == "ads").sum() == apportion([facts.ADS_SHARE, 1 - facts.ADS_SHARE], n)[0]
    assert dict(users["country"].value_counts().iter_rows()) == country_quota(n)
    assert sorted(users["exp_group"].value_counts()["count"].to_list()) == [n // 5] * 5


def test_user_ids_start_at_200_with_gaps(world):
    ids = world[0]["user_id"]
    assert ids.min() == 200
    assert ids.is_unique().all()
    assert ids.max() - ids.min() + 1 > ids.len()


def test_ages_have_the_real_summary(world):
    ages = world[0]["age"]
    assert ages.mean() == pytest.approx(facts.AGE_MEAN, abs=0.3)
    assert ages.median() == facts.AGE_MEDIAN
    assert ages.mode().to_list() == [facts.AGE_MODE]
    assert (ages.quantile(0.25, "lower"), ages.quantile(0.75, "lower")) == facts.AGE_QUARTILES
    assert facts.AGE_RANGE[0] <= ages.min() and ages.max() <= facts.AGE_RANGE[1]


def test_cities_match_the_real_shares_and_tail(world):
    users = world[0]
    russians = users.filter(pl.col("country") == "Russia")["city"]
    for city, count in facts.RUSSIAN_CITY_COUNTS.items():
        share = count / facts.COUNTRY_COUNTS["Russia"]
        # binomial noise at ~2,600 Russians: about 3 standard deviations
        assert (russians == city).mean() == pytest.approx(share, abs=3 * np.sqrt(share / 2600) + 0.002)
    expected = expected_distinct_cities(city_tables(), country_quota(SCALE.users))
    assert users["city"].n_unique() == pytest.approx(expected, rel=0.08)


def test_posts_have_the_topic_proportions_and_id_gaps(world):
    posts = world[1]
    quota = apportion([facts.TOPIC_COUNTS[t] for t in TOPICS], SCALE.posts)
    assert dict(posts["topic"].value_counts().iter_rows()) == dict(zip(TOPICS, quota.tolist(), strict=True))
    assert posts["post_id"].min() == 1
    assert posts["post_id"].max() > SCALE.posts


def test_share_of_posts_ever_in_the_feed(world):
    shown = world[2]["post_id"].n_unique() / SCALE.posts
    assert shown == pytest.approx(facts.SHOWN_POST_SHARE, abs=0.005)


def test_views_per_user(world, views):
    per_user = views.group_by("user_id").len()["len"]
    assert per_user.min() >= facts.MIN_VIEWS
    assert per_user.mean() == pytest.approx(facts.MEAN_VIEWS, rel=0.04)
    assert per_user.median() == pytest.approx(facts.MEDIAN_VIEWS, rel=0.04)
    assert per_user.std() > 150  # heavy spread
    assert world[2].height / SCALE.users == pytest.approx(470, rel=0.04)


def test_repeat_views(views):
    repeats = views.height - views.select(pl.struct("user_id", "post_id").n_unique()).item()
    assert repeats / views.height == pytest.approx(facts.REPEAT_VIEW_SHARE, abs=0.004)


def test_like_rate_by_month_and_overall(views):
    by_month = dict(views.group_by(pl.col("timestamp").dt.month()).agg(pl.col("target").mean()).iter_rows())
    for month, rate in zip((10, 11, 12), facts.MONTH_LIKE_RATES, strict=True):
        assert by_month[month] == pytest.approx(rate, abs=0.005)
    assert views["target"].mean() == pytest.approx(0.12, abs=0.005)


def test_likes_are_more_likely_in_the_evening(views):
    hour = pl.col("timestamp").dt.hour()
    evening = views.filter(hour >= 18)["target"].mean()
    morning = views.filter(hour < 12)["target"].mean()
    assert evening - morning > 0.02


def test_views_happen_by_day_between_6_and_midnight(world, views):
    assert views["timestamp"].dt.hour().min() == 6
    assert views["timestamp"].min() >= datetime(2021, 10, 1, 6)
    assert world[2]["timestamp"].max() < datetime(2021, 12, 30)
    share_by_hour = views.group_by(pl.col("timestamp").dt.hour()).len().sort("timestamp")["len"] / views.height
    assert share_by_hour.max() / share_by_hour.min() > 2  # a daily shape, not flat


def test_like_delay_quartiles(world, views):
    likes = world[2].filter(pl.col("action") == "like")
    pairs = likes.join(views.filter(pl.col("target") == 1), on=["user_id", "post_id"], suffix="_view")
    delay = (pairs["timestamp"] - pairs["timestamp_view"]).dt.total_seconds()
    quartiles = (delay.quantile(0.25), delay.median(), delay.quantile(0.75))
    assert quartiles == pytest.approx(facts.LIKE_DELAY_QUARTILES, abs=3)


def test_per_post_like_share(world):
    per_post = (
        world[2]
        .group_by("post_id")
        .agg(views=VIEW.sum(), likes=(pl.col("action") == "like").sum(), rows=pl.len())
        .filter(pl.col("views") >= 200)
    )
    share = per_post["likes"] / per_post["rows"]
    # Mean within 0.015 of 0.10; the 1st..99th percentiles inside 0.055..0.17 (the real 0.063..0.143 widened by
    # binomial noise at a few hundred views per post).
    assert share.mean() == pytest.approx(facts.POST_LIKE_SHARE_MEAN, abs=0.015)
    assert share.quantile(0.01) >= 0.055
    assert share.quantile(0.99) <= 0.17


def test_oracle_beats_popularity_by_far_on_hitrate_at_5(world):
    """The world is learnable: the truth ranks far better than a popularity list for the last week's likes."""
    _, _, feed, truth = world
    start, end = datetime(2021, 12, 23), datetime(2021, 12, 30)
    before, after = feed.filter(pl.col("timestamp") < start), feed.filter(pl.col("timestamp") >= start)
    targets = after.filter(pl.col("action") == "like")
    users = np.sort(targets["user_id"].unique().to_numpy())[:1000]
    liked, seen, target = (np.zeros((len(users), len(truth.post_id)), bool) for _ in range(3))
    for mask, frame in ((liked, before.filter(pl.col("action") == "like")), (seen, before), (target, targets)):
        frame = frame.filter(pl.col("user_id").is_in(users))
        mask[np.searchsorted(users, frame["user_id"].to_numpy()), truth.post_rows(frame["post_id"].to_numpy())] = 1
    like_rows = truth.post_rows(before.filter(pl.col("action") == "like")["post_id"].to_numpy())
    popularity = np.bincount(like_rows, minlength=len(truth.post_id))

    def hitrate(scores: np.ndarray) -> float:
        top = np.argsort(-np.where(liked, -np.inf, scores), axis=1)[:, :5]
        return float(np.take_along_axis(target, top, axis=1).any(axis=1).mean())

    oracle = hitrate(oracle_scores(truth, users, truth.post_id, start, end, seen_before=seen))
    popular = hitrate(np.tile(popularity.astype(float), (len(users), 1)))
    assert oracle > 0.6
    assert oracle > popular + 0.3
