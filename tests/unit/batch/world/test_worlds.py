"""The family of worlds: each is reproducible, and each plants the structure it is meant to.

The structure checks rank posts for the likes after a cut with simple predictors written here (co-like cosine,
the user's likes per topic or per text sub-topic, recent popularity), never with the generator's truth, and
compare their hit rates at 5 (posts seen before the cut left out).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import chi2

from batch.world.designs import LONG_PERIOD_START, WORLDS, Period, resolve_world
from batch.world.generator import generate_tables
from batch.world.params import WorldParams
from common.errors import ConfigError, DataValidationError

LIKE = pl.col("action") == "like"
VIEW = pl.col("action") == "view"
CUT = datetime(2021, 12, 16)


class Holdout:
    """Likes after ``cut`` against what each user liked and saw before it, as users x posts matrices."""

    def __init__(self, feed: pl.DataFrame, truth, cut: datetime) -> None:
        self.truth = truth
        before = feed.filter(pl.col("timestamp") < cut)
        self.liked = self._matrix(before.filter(LIKE))
        self.seen = self._matrix(before)
        self.target = self._matrix(feed.filter((pl.col("timestamp") >= cut) & LIKE))
        self.recent = before.filter(pl.col("timestamp") >= cut - timedelta(days=3)).filter(LIKE)

    def _matrix(self, frame: pl.DataFrame) -> np.ndarray:
        mask = np.zeros((len(self.truth.user_id), len(self.truth.post_id)), dtype=bool)
        mask[self.truth.user_rows(frame["user_id"].to_numpy()), self.truth.post_rows(frame["post_id"].to_numpy())] = 1
        return mask

    def hitrate(self, scores: np.ndarray) -> float:
        """Hit rate at 5 over users with a like after the cut, unseen posts only."""
        scores = np.broadcast_to(scores, self.seen.shape)
        top = np.argsort(-np.where(self.seen, -np.inf, scores), axis=1)[:, :5]
        hits = np.take_along_axis(self.target, top, axis=1).any(axis=1)
        return float(hits[self.target.any(axis=1)].mean())

    def popularity(self) -> np.ndarray:
        return self.liked.sum(axis=0).astype(np.float64)

    def co_likes(self) -> np.ndarray:
        """Item-kNN: each post's cosine similarity (over users' likes) to the posts the user liked."""
        x = self.liked.astype(np.float64)
        norms = np.sqrt(x.sum(axis=0)) + 1e-9
        similarity = (x.T @ x) / np.outer(norms, norms)
        np.fill_diagonal(similarity, 0)
        return x @ similarity

    def by_label(self, label: np.ndarray) -> np.ndarray:
        """The user's likes of posts with the post's label (topic or text sub-topic), ties broken by popularity."""
        onehot = np.eye(label.max() + 1)[label]
        per_label = self.liked.astype(np.float64) @ onehot
        return (per_label @ onehot.T) * (1 + 1e-3 * self.popularity() / self.popularity().max())

    def recent_popularity(self) -> np.ndarray:
        rows = self.truth.post_rows(self.recent["post_id"].to_numpy())
        return np.bincount(rows, minlength=len(self.truth.post_id)) + 1e-6 * self.popularity()


@pytest.fixture(scope="module")
def holdouts(small_world):
    cache: dict[str, Holdout] = {}

    def get(name: str) -> Holdout:
        if name not in cache:
            _, _, feed, truth = small_world(name)
            cache[name] = Holdout(feed, truth, CUT)
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(WORLDS))
def test_the_same_scale_seed_and_world_give_the_same_data(name):
    first, again = generate_tables("tiny", 5, name), generate_tables("tiny", 5, name)
    for one, other in zip(first[:3], again[:3], strict=True):
        assert one.equals(other)
    assert first[3].params == again[3].params
    assert first[3].params.world == name
    assert not first[2].equals(generate_tables("tiny", 6, name)[2])


def test_every_world_gives_a_different_feed_from_the_same_seed():
    feeds = [generate_tables("tiny", 5, name)[2] for name in WORLDS]
    for index, feed in enumerate(feeds):
        assert all(not feed.equals(other) for other in feeds[index + 1 :])


def test_an_unknown_world_is_refused_with_the_valid_names():
    with pytest.raises(ConfigError, match=r"unknown world 'social'.*text, collab, popular, bursty, fleeting"):
        resolve_world("social")


def test_periods_know_their_calendar_months():
    real = Period(datetime(2021, 10, 1), 90, (0.094, 0.125, 0.14))
    assert real.month_day_starts() == (0, 31, 61)
    long = resolve_world("bursty").period
    assert long.start == LONG_PERIOD_START == datetime(2020, 10, 1)
    assert long.days == 455  # 2020-10-01 .. 2021-12-29
    # Oct, Nov, Dec 2020, Jan .. Dec 2021 (February 2021 has 28 days)
    assert long.month_day_starts() == (0, 31, 61, 92, 123, 151, 182, 212, 243, 273, 304, 335, 365, 396, 426)
    assert len(long.month_like_rates) == 15


def test_params_from_another_version_ask_for_a_reseed():
    params = generate_tables("tiny", 5, "bursty")[3].params
    assert WorldParams.from_json(params.to_json()) == params
    old = params.to_json().replace('"group_offsets"', '"subtopic_offsets"')
    with pytest.raises(DataValidationError, match=r"group_offsets.*run `postrec seed` again"):
        WorldParams.from_json(old)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["collab", "fleeting"])
def test_collab_groups_are_drawn_apart_from_the_texts(name, small_world):
    """Within a topic, a post's text sub-topic and its hidden group are independent: one chi-square test over
    the seven topics' contingency tables together."""
    truth = small_world(name)[3]
    statistic, freedom = 0.0, 0
    for topic in np.unique(truth.post_topic):
        members = truth.post_topic == topic
        table = pl.DataFrame({"g": truth.post_group[members], "s": truth.post_subtopic[members]})
        counts = table.group_by("g", "s").len().pivot(on="s", index="g", values="len").fill_null(0).drop("g")
        observed = counts.to_numpy().astype(float)
        expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
        statistic += ((observed - expected) ** 2 / expected).sum()
        freedom += (observed.shape[0] - 1) * (observed.shape[1] - 1)
    assert chi2.sf(statistic, freedom) > 0.01
    # In the text world, by contrast, a post's group is its text's sub-topic.
    text = small_world("text")[3]
    assert np.array_equal(text.post_group, text.post_subtopic)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["collab", "fleeting"])
def test_collab_co_likes_predict_held_out_likes_where_topics_and_texts_do_not(name, holdouts):
    collab = holdouts(name)
    co_likes = collab.hitrate(collab.co_likes())
    topic = collab.hitrate(collab.by_label(collab.truth.post_topic))
    text = collab.hitrate(collab.by_label(collab.truth.post_subtopic))
    assert co_likes > topic + 0.07
    assert co_likes > text + 0.07
    assert text < topic + 0.02  # a text's sub-topic adds nothing to its topic here


@pytest.mark.slow
def test_text_world_sub_topics_in_the_text_predict_better_than_co_likes(holdouts):
    text_world = holdouts("text")
    text = text_world.hitrate(text_world.by_label(text_world.truth.post_subtopic))
    assert text > text_world.hitrate(text_world.co_likes()) + 0.07
    assert text > text_world.hitrate(text_world.by_label(text_world.truth.post_topic)) + 0.1


@pytest.mark.slow
def test_popular_hits_are_liked_by_most_users_within_days_of_their_release(small_world):
    users, _, feed, _ = small_world("popular")
    likes = feed.filter(LIKE)
    top = (
        likes.group_by("post_id")
        .agg(
            likers=pl.col("user_id").n_unique(),
            days=(pl.col("timestamp").quantile(0.9) - pl.col("timestamp").quantile(0.1)).dt.total_days(),
        )
        .sort("likers", descending=True)
        .head(10)
    )
    assert (top["likers"] / users.height).min() > 0.5
    assert top["days"].max() <= 12  # 80% of a hit's likes within under two weeks: it rises and fades


@pytest.mark.slow
def test_popular_recent_likes_predict_the_next_ones(holdouts):
    popular, text_world = holdouts("popular"), holdouts("text")
    recent = popular.hitrate(popular.recent_popularity())
    assert recent > 0.6
    assert recent > popular.hitrate(popular.by_label(popular.truth.post_subtopic)) + 0.1
    # On the text world the same predictor is weak.
    assert text_world.hitrate(text_world.recent_popularity()) < 0.4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bursty", "fleeting"])
def test_bursty_users_are_active_on_few_days_of_a_long_span(name, small_world):
    feed = small_world(name)[2]
    views = feed.filter(VIEW)
    days = views.group_by("user_id").agg(pl.col("timestamp").dt.date().n_unique().alias("days"))["days"]
    assert (days <= 5).mean() > 0.7
    assert days.median() <= 4
    assert (views["timestamp"].max() - views["timestamp"].min()).days >= 450


@pytest.mark.slow
def test_a_global_time_cut_catches_few_bursty_users(small_world):
    last_week = datetime(2021, 12, 23)
    caught = {}
    for name in ("bursty", "fleeting", "text"):
        feed = small_world(name)[2]
        caught[name] = feed.filter(pl.col("timestamp") >= last_week)["user_id"].n_unique() / 3_000
    assert caught["bursty"] < 0.15
    assert caught["fleeting"] < 0.15
    assert caught["text"] > 0.9


@pytest.mark.slow
def test_bursty_views_fall_on_each_users_active_days(small_world):
    _, _, feed, truth = small_world("bursty")
    start = datetime(2020, 10, 1)
    views = feed.filter(VIEW).select(
        "user_id", day=(pl.col("timestamp") - pl.lit(start)).dt.total_days().cast(pl.Int64)
    )
    rows = truth.user_rows(views["user_id"].to_numpy())
    ptr = truth.user_day_ptr
    active = {
        (int(user), int(day))
        for user in range(len(truth.user_id))
        for day in truth.user_days[ptr[user] : ptr[user + 1]]
    }
    assert all((int(r), int(d)) in active for r, d in zip(rows, views["day"].to_numpy(), strict=True))
