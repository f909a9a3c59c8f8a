"""The ``popular`` world's hits: a few posts that trend in everyone's feed, one after another, and fade.

A hit moves into the trending group, which takes a fixed share of every user's views whatever their interests,
and within which the hits share the views by their trends: most users are shown each hit while it trends. Hits
are released evenly over the period, each rising for a day or two and decaying within a week
(:func:`batch.world.truth.trend_bump`); calibration gives the trending group the hits' like rate. Likes in the
last days are then the best guide to likes in the next.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from batch.world.designs import Hits
from batch.world.dist import IntArray, apportion
from batch.world.facts import TOPIC_COUNTS
from batch.world.truth import WorldTruth
from common.columns import TOPICS

_RELEASE_LEAD_DAYS = 2.0
"""The first hit is released up to this many days before the period, so one already trends on its first day."""


def hit_count(hits: Hits, posts: int) -> int:
    """How many hits a world of ``posts`` posts gets."""
    return min(hits.count, posts // hits.posts_per_hit)


def choose_hits(rng: np.random.Generator, truth: WorldTruth, hits: Hits) -> IntArray:
    """Post rows of the hits: shown posts, topics in the real proportions."""
    quota = apportion([TOPIC_COUNTS[t] for t in TOPICS], hit_count(hits, len(truth.post_id)))
    chosen = [
        rng.choice(np.flatnonzero((truth.post_topic == topic) & truth.post_shown), count, replace=False)
        for topic, count in enumerate(quota.tolist())
    ]
    return np.asarray(np.concatenate(chosen), dtype=np.int64)


def plant_hits(rng: np.random.Generator, truth: WorldTruth, hits: Hits, trending: int) -> WorldTruth:
    """The truth with hits moved into the ``trending`` group, each with an even popularity, a release slot of its
    own and a short trend; users' tastes for hits shrunk."""
    rows = choose_hits(rng, truth, hits)
    count, days = len(rows), truth.params.period_days
    release = (np.arange(count) + rng.uniform(0, 1, count)) * (days + _RELEASE_LEAD_DAYS) / count - _RELEASE_LEAD_DAYS
    post_group, popularity = truth.post_group.copy(), truth.post_popularity.copy()
    release_day, trend_days = truth.post_release_day.copy(), truth.post_trend_days.copy()
    post_group[rows] = trending
    popularity[rows] = 1.0
    release_day[rows] = release[rng.permutation(count)]
    trend_days[rows] = rng.uniform(*hits.trend_days, count)
    fixed = np.zeros(len(truth.params.group_topics))
    fixed[trending] = hits.feed_share
    taste = truth.user_group_taste.copy()
    taste[:, trending] *= hits.taste_shrink
    params = replace(
        truth.params,
        group_fixed_shares=tuple(fixed.tolist()),
        trend_rise_days=hits.rise_days,
        trend_amplitude=hits.trend_amplitude,
    )
    return replace(
        truth,
        params=params,
        user_group_taste=taste,
        post_group=post_group,
        post_popularity=popularity,
        post_release_day=release_day,
        post_trend_days=trend_days,
    )
