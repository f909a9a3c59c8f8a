"""Segment lift: how much more a post is liked by users of one gender and age band, or of one operating system, than
by everyone.

A user with no like and no view before the cutoff gives the collaborative columns nothing to read, and the model
ranks them as it ranks everyone's first moments: by what is popular. Their demographics still say something about
their taste (topic tastes differ by age and gender in the course's data, and the synthetic worlds are calibrated to
that). On the bursty world's time cut, where about half of the held-out users have no history, the top 5 of the
user's gender x age decade caught a like of 47% of those users (seed 7) and 44% (seed 42), the global top 5 of 40%
and 42% (bench/RESULTS.md, stop 34).

So scoring swaps, for such a user only, the popularity in the model's log-odds for the popularity in the user's
segment (:func:`tilt_towards_segment`): the model's own order (recency, quality), at half weight, with what the
user's peers like in place of what everyone likes. The lift is ``segment share / overall share``, both smoothed:
the segment's share of a post is ``(its likes of the post + PRIOR_LIKES x the overall share) / (its likes +
PRIOR_LIKES)``, so a segment with few likes has lifts close to 1 (log 0), and the overall share gives every post
one pseudo-like, so a post nobody liked has a finite lift.

Adding the log lift alone would assume the model's log-odds rise one for one with a post's log overall share. They
rise less: on the bursty world a user without history's scores rise 0.71-0.73 per unit of it, so the lift alone
also took 0.28 x the log share off every post, a penalty on what is popular that the segment's own counts do not
make. The tilt therefore measures each such user's slope on the log share (least squares over the posts) and adds
back (1 - slope) x the log share with the lift: the model's popularity part out, the segment's in. On the bursty
time cuts (small, seeds 7 and 42, hold-outs of 89 and 81 days) this took `control` from 0.4985 / 0.4965 to
0.5115 / 0.5055; over the medium bursty world's 7-day hold-out, where what is recent matters more, it cost one user
of 1,391 (bench/RESULTS.md, stop 35).

The operating system can say something too (the worlds draw topic tastes from it as from age and gender; where it
says nothing, its smoothed lifts stay near 0). Its lift is fitted the same way over the users of each operating
system code and added to the segment's, as naive Bayes adds independent evidence; a joint gender x age x system
segment splits the likes thinner, and its top 5 alone caught fewer users without history than gender x age alone
(bursty time cuts: 0.42-0.44 against 0.45-0.47; with the two lifts added 0.47-0.49). Adding the traffic source's
and the country's lifts as well lowered that again. On the bursty time cuts (small, seeds 3, 7 and 42) the system's
lift took both models up by 0.008 to 0.016 (bench/RESULTS.md, stop 38).

What the model's log-odds add beyond popularity (recency, trend, quality) helps such users on some hold-outs and
hurts on others: on the small bursty time cuts (81-89 days) the peers' popularity alone took `control` from 0.5055
to 0.5295 (seed 42) and from 0.5005 to 0.5194 (seed 7), but down from 0.5070 to 0.4920 (seed 3). Keeping half of it
(``MODEL_WEIGHT``) gained on all three: 0.5155, 0.5165, 0.5110 (bench/RESULTS.md, stop 39).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from batch.pipeline.features import USER_FEATURES, Feature, FeatureSet, FloatArray
from batch.ranking.positions import IndexArray

AGE_BAND_YEARS: Final = 10
# Bands: under 20, the 20s, ... the 60s, 70 and over (an unknown age counts as the first).
AGE_BANDS: Final = 7
SEGMENTS: Final = 2 * AGE_BANDS
PRIOR_LIKES: Final = 50.0
# How much of what a user without history's log-odds say beyond popularity is kept (see the module): 1 kept it all
# (stops 35-38), 0 ranks by the peers' popularity alone; half gained on the three small bursty time cuts measured,
# where 0 lost on one (bench/RESULTS.md, stop 39).
MODEL_WEIGHT: Final = 0.5

_AGE, _GENDER = USER_FEATURES.index(Feature.AGE), USER_FEATURES.index(Feature.GENDER)
_OS = USER_FEATURES.index(Feature.OS)


def user_segments(user_rows: FloatArray) -> IndexArray:
    """Each user's segment (0 .. SEGMENTS - 1) from their rows of ``FeatureSet.users``: gender (any value above 0 is
    the second) times the age band."""
    ages = np.nan_to_num(user_rows[:, _AGE], nan=0.0)
    bands = np.clip(ages // AGE_BAND_YEARS - 1, 0, AGE_BANDS - 1).astype(np.int64)
    second = np.nan_to_num(user_rows[:, _GENDER], nan=0.0) > 0
    return second.astype(np.int64) * AGE_BANDS + bands


def user_os(user_rows: FloatArray, slots: int) -> IndexArray:
    """Each user's operating system code from their rows of ``FeatureSet.users``, in ``0 .. slots - 1`` (a missing
    code or one beyond the table counts as the last)."""
    codes = np.nan_to_num(user_rows[:, _OS], nan=slots - 1.0)
    return np.clip(codes, 0, slots - 1).astype(np.int64)


def os_slots(features: FeatureSet) -> int:
    """Rows of the operating system table: one per code the users have (the encoder's unknown code included)."""
    codes = features.users[:, _OS]
    known = codes[np.isfinite(codes)]
    return int(known.max()) + 1 if known.size else 1


def group_likes(features: FeatureSet, groups: IndexArray, count: int) -> npt.NDArray[np.float64]:
    """(count x posts) like counts before the feature set's cutoff (its liked CSR), each user's in their group."""
    posts = features.post_ids.size
    owners = np.repeat(np.arange(features.user_ids.size), np.diff(features.liked_indptr))
    cells = groups[owners] * posts + features.liked_posts.astype(np.int64)
    return np.bincount(cells, minlength=count * posts).reshape(count, posts).astype(np.float64)


def segment_likes(features: FeatureSet) -> npt.NDArray[np.float64]:
    """(SEGMENTS x posts) like counts of each segment before the feature set's cutoff (its liked CSR)."""
    return group_likes(features, user_segments(features.users), SEGMENTS)


@dataclass(frozen=True, slots=True)
class SegmentLift:
    """What the segments' likes before a cutoff say, per post.

    Attributes:
        lift: (SEGMENTS x posts) float32 log of each post's smoothed share in the segment over its overall share.
        log_share: (posts,) float32 log of each post's smoothed overall share of the likes.
        os_lift: (operating systems x posts) float32, the same lift among the users of each operating system code.
    """

    lift: FloatArray
    log_share: FloatArray
    os_lift: FloatArray

    def user_lift(self, user_rows: FloatArray) -> FloatArray:
        """(users x posts) each user's log lift: their segment's plus their operating system's."""
        segments, systems = user_segments(user_rows), user_os(user_rows, len(self.os_lift))
        lifts: FloatArray = self.lift[segments] + self.os_lift[systems]
        return lifts


def fit_segment_lift(features: FeatureSet, prior_likes: float = PRIOR_LIKES) -> SegmentLift:
    """Each post's log lift in each segment and log overall share before the feature set's cutoff (see the
    module)."""
    likes = segment_likes(features)
    everyone = likes.sum(axis=0)
    overall = (everyone + 1.0) / (everyone.sum() + everyone.size)
    slots = os_slots(features)
    by_os = group_likes(features, user_os(features.users, slots), slots)
    return SegmentLift(
        _log_lift(likes, overall, prior_likes),
        np.log(overall).astype(np.float32),
        _log_lift(by_os, overall, prior_likes),
    )


def _log_lift(likes: npt.NDArray[np.float64], overall: npt.NDArray[np.float64], prior_likes: float) -> FloatArray:
    """(groups x posts) log of each group's smoothed share of a post over its overall share."""
    shares = (likes + prior_likes * overall[None, :]) / (likes.sum(axis=1, keepdims=True) + prior_likes)
    lift: FloatArray = np.log(shares / overall[None, :]).astype(np.float32)
    return lift


def tilt_towards_segment(
    scores: FloatArray, lifts: FloatArray, table: SegmentLift, model_weight: float = MODEL_WEIGHT
) -> FloatArray:
    """(users x posts) scores of users without history: their peers' log share of each post (the log overall share
    plus ``lifts``, each user's :meth:`SegmentLift.user_lift`) plus ``model_weight`` x what their log-odds say beyond
    popularity (the scores less their least-squares slope on the log overall share times it; see the module)."""
    popularity = table.log_share.astype(np.float64) - float(table.log_share.mean())
    spread = float(popularity @ popularity)
    # The log share is centred, so the scores need not be for the least-squares slope. No spread (no like at all):
    # nothing to measure a slope on, and the lift is 0 everywhere too.
    slope = scores @ popularity / spread if spread > 0 else np.ones(len(scores))
    beyond = scores - slope[:, None] * popularity
    tilted: FloatArray = (model_weight * beyond + lifts + popularity).astype(np.float32)
    return tilted


def without_history(features: FeatureSet, users: IndexArray) -> npt.NDArray[np.bool_]:
    """Which of the users at ``users`` positions neither liked nor was shown anything before the cutoff."""
    # Row lengths of the block's users only: scoring asks this once per block.
    liked = features.liked_indptr[users + 1] - features.liked_indptr[users]
    shown = features.viewed_indptr[users + 1] - features.viewed_indptr[users]
    cold: npt.NDArray[np.bool_] = (liked == 0) & (shown == 0)
    return cold
