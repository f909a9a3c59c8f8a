"""The hidden side of the world: users' tastes and activity, posts' quality, popularity and trend.

Tastes are logits added to the like probability. A user's taste for a topic is partly explained by demographics
(the coefficients below), partly individual; group (sub-topic) tastes likewise, with coefficients drawn per world,
except in the ``collab`` world, where they come from the user's community (:mod:`batch.world.communities`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch.world.communities import community_group_taste
from batch.world.designs import Communities
from batch.world.dist import FloatArray, IntArray, quota_labels
from batch.world.facts import MIN_VIEWS, SHOWN_POST_SHARE
from batch.world.users import COUNTRIES, Users

# Per topic (business, covid, entertainment, movie, politics, sport, tech), the taste logit per unit of each
# demographic feature: age in decades from 27, gender 1, Russia, iOS, ads (all centred on their mean).
_TOPIC_COEFS = np.array(
    [
        [0.35, 0.10, 0.00, 0.30, -0.05],
        [0.15, -0.15, 0.20, -0.10, 0.10],
        [-0.25, -0.30, 0.00, 0.15, 0.15],
        [-0.15, 0.00, -0.10, 0.00, 0.20],
        [0.45, 0.15, 0.15, 0.05, -0.20],
        [-0.05, 0.55, -0.10, -0.05, 0.00],
        [-0.10, 0.40, 0.00, 0.25, -0.10],
    ]
)
_TOPIC_INDIVIDUAL_SD = 0.9
_SUBTOPIC_COEF_SD = 0.25
_SUBTOPIC_INDIVIDUAL_SD = 1.0
# Exposure follows an "interest" that correlates this much with the taste: enough that the feed shows users more
# of what they like, little enough that a niche post's few viewers are not all fans (which would push per-post
# like rates far outside the real 0.063..0.143).
_INTEREST_TASTE_CORR = 0.2
_USER_BIAS_SD = 0.5
_QUALITY_SD = 0.05
_POPULARITY_SD = 1.3
_POPULARITY_QUALITY_CORR = 0.5
# Views per user above the minimum are gamma distributed; shape and scale solved for median 340 and mean 385
# (375 and 420 with the minimum of 35 added).
_VIEWS_GAMMA_SHAPE = 2.7831
_VIEWS_GAMMA_SCALE = 138.335
_TREND_DAYS = (4.0, 15.0)
_RELEASE_LEAD_DAYS = 30.0
"""Posts' trends may start this many days before the period."""


@dataclass(frozen=True, slots=True)
class UserLatent:
    """Per user: like-logit bias, tastes (users x topics, users x groups), exposure interest (users x groups)
    and the planned number of views."""

    bias: FloatArray
    topic_taste: FloatArray
    group_taste: FloatArray
    interest: FloatArray
    planned_views: IntArray


@dataclass(frozen=True, slots=True)
class PostLatent:
    """Per post: quality (like logit), popularity and trend (exposure), and whether the feed ever shows it."""

    quality: FloatArray
    popularity: FloatArray
    release_day: FloatArray
    trend_days: FloatArray
    shown: np.ndarray


def demographic_features(users: Users) -> FloatArray:
    """Users x 5 centred features: age decades, gender, Russia, iOS, ads."""
    russia = COUNTRIES.index("Russia")
    raw = np.column_stack(
        [
            np.clip((users.age - 27) / 10, -1.5, 4.0),
            users.gender,
            users.country == russia,
            users.os == 1,
            users.source == 0,
        ]
    ).astype(np.float64)
    return np.asarray(raw - raw.mean(axis=0))


def generate_user_latent(
    rng: np.random.Generator,
    users: Users,
    group_topics: IntArray,
    views_factor: float,
    communities: Communities | None = None,
) -> UserLatent:
    """Tastes explained partly by demographics (or by communities), plus each user's bias and planned views
    (35 + gamma)."""
    features = demographic_features(users)
    count = len(users)
    topic_taste = features @ _TOPIC_COEFS.T + rng.normal(0, _TOPIC_INDIVIDUAL_SD, (count, len(_TOPIC_COEFS)))
    if communities is None:
        group_taste = _demographic_group_taste(rng, features, len(group_topics))
    else:
        group_taste = community_group_taste(rng, features, len(group_topics), communities)
    variable = views_factor * rng.gamma(_VIEWS_GAMMA_SHAPE, _VIEWS_GAMMA_SCALE, count)
    return UserLatent(
        bias=rng.normal(0, _USER_BIAS_SD, count),
        topic_taste=topic_taste,
        group_taste=group_taste,
        interest=_interest(rng, topic_taste[:, group_topics] + group_taste, group_topics),
        planned_views=(MIN_VIEWS + np.round(variable)).astype(np.int64),
    )


def _demographic_group_taste(rng: np.random.Generator, features: FloatArray, groups: int) -> FloatArray:
    """Users x groups: demographics times coefficients drawn per world, plus an individual part."""
    coefs = rng.normal(0, _SUBTOPIC_COEF_SD, (groups, features.shape[1]))
    return np.asarray(features @ coefs.T + rng.normal(0, _SUBTOPIC_INDIVIDUAL_SD, (len(features), groups)))


def _interest(rng: np.random.Generator, taste: FloatArray, group_topics: IntArray) -> FloatArray:
    """Users x groups exposure interest: the taste's direction mixed with independent noise of the same scale."""
    count, n_topics = len(taste), int(group_topics.max()) + 1
    noise = rng.normal(0, _TOPIC_INDIVIDUAL_SD, (count, n_topics))[:, group_topics]
    noise += rng.normal(0, _SUBTOPIC_INDIVIDUAL_SD, taste.shape)
    scale = taste.std() / noise.std()
    corr = _INTEREST_TASTE_CORR
    return np.asarray(corr * taste + np.sqrt(1 - corr**2) * scale * noise)


def generate_post_latent(rng: np.random.Generator, count: int, period_days: int) -> PostLatent:
    """Quality and popularity (correlated: better posts are pushed more), a trend, and the never-shown few."""
    quality_z = rng.normal(0, 1, count)
    noise = rng.normal(0, 1, count)
    popularity_z = _POPULARITY_QUALITY_CORR * quality_z + np.sqrt(1 - _POPULARITY_QUALITY_CORR**2) * noise
    shown = quota_labels(rng, [SHOWN_POST_SHARE, 1 - SHOWN_POST_SHARE], count) == 0
    return PostLatent(
        quality=_QUALITY_SD * quality_z,
        popularity=np.exp(_POPULARITY_SD * popularity_z),
        release_day=rng.uniform(-_RELEASE_LEAD_DAYS, period_days - 1.0, count),
        trend_days=rng.uniform(*_TREND_DAYS, count),
        shown=shown,
    )
