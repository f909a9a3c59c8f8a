"""The hidden side of the world: users' tastes and activity, posts' quality, popularity and trend.

Tastes are logits added to the like probability. A user's taste for a topic is partly explained by demographics
(the coefficients below), partly individual; sub-topic tastes likewise, with coefficients drawn per world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch.world_dist import FloatArray, IntArray, quota_labels
from batch.world_facts import MEDIAN_VIEWS, MIN_VIEWS, PERIOD_DAYS, SHOWN_POST_SHARE
from batch.world_users import COUNTRIES, Users

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
_TOPIC_INDIVIDUAL_SD = 0.5
_SUBTOPIC_COEF_SD = 0.25
_SUBTOPIC_INDIVIDUAL_SD = 0.5
_USER_BIAS_SD = 0.5
_QUALITY_SD = 0.12
_POPULARITY_SD = 0.8
_POPULARITY_QUALITY_CORR = 0.5
_VIEWS_LOG_SD = 0.5
_TREND_WIDTH_DAYS = (3.0, 12.0)


@dataclass(frozen=True, slots=True)
class UserLatent:
    """Per user: like-logit bias, tastes (users x topics, users x sub-topics) and the planned number of views."""

    bias: FloatArray
    topic_taste: FloatArray
    subtopic_taste: FloatArray
    planned_views: IntArray


@dataclass(frozen=True, slots=True)
class PostLatent:
    """Per post: quality (like logit), popularity and trend (exposure), and whether the feed ever shows it."""

    quality: FloatArray
    popularity: FloatArray
    peak_day: FloatArray
    trend_width: FloatArray
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
    rng: np.random.Generator, users: Users, subtopic_topics: IntArray, views_factor: float
) -> UserLatent:
    """Tastes explained partly by demographics, plus each user's bias and planned views (lognormal above 35)."""
    features = demographic_features(users)
    count, n_sub = len(users), len(subtopic_topics)
    topic_taste = features @ _TOPIC_COEFS.T + rng.normal(0, _TOPIC_INDIVIDUAL_SD, (count, len(_TOPIC_COEFS)))
    sub_coefs = rng.normal(0, _SUBTOPIC_COEF_SD, (n_sub, features.shape[1]))
    subtopic_taste = features @ sub_coefs.T + rng.normal(0, _SUBTOPIC_INDIVIDUAL_SD, (count, n_sub))
    variable = (MEDIAN_VIEWS - MIN_VIEWS) * views_factor * np.exp(rng.normal(0, _VIEWS_LOG_SD, count))
    return UserLatent(
        bias=rng.normal(0, _USER_BIAS_SD, count),
        topic_taste=topic_taste,
        subtopic_taste=subtopic_taste,
        planned_views=(MIN_VIEWS + np.round(variable)).astype(np.int64),
    )


def generate_post_latent(rng: np.random.Generator, count: int) -> PostLatent:
    """Quality and popularity (correlated: better posts are pushed more), a trend peak day, the never-shown few."""
    quality_z = rng.normal(0, 1, count)
    noise = rng.normal(0, 1, count)
    popularity_z = _POPULARITY_QUALITY_CORR * quality_z + np.sqrt(1 - _POPULARITY_QUALITY_CORR**2) * noise
    shown = quota_labels(rng, [SHOWN_POST_SHARE, 1 - SHOWN_POST_SHARE], count) == 0
    return PostLatent(
        quality=_QUALITY_SD * quality_z,
        popularity=np.exp(_POPULARITY_SD * popularity_z),
        peak_day=rng.uniform(-10, PERIOD_DAYS + 10, count),
        trend_width=rng.uniform(*_TREND_WIDTH_DAYS, count),
        shown=shown,
    )
