"""The like side of the feed: which views are liked, and the ``feed_data`` rows of one chunk.

A first view is liked with probability ``sigmoid(month offset + hour effect + pair logit)`` (see
:func:`batch.world.truth.pair_like_logits`); re-shows are never liked, so a post is liked at most once per user.
A like row follows its view after a delay with the real quartiles (50, 93, 135 s).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.world.dist import FloatArray, sample_like_delays, sigmoid
from batch.world.facts import FIRST_MINUTE
from batch.world.truth import WorldTruth, pair_like_logits
from batch.world.views import Views
from common.columns import Action, Col


def _epoch_us(truth: WorldTruth) -> int:
    """Microseconds from 1970-01-01 to the period's start."""
    return int((truth.params.start - datetime(1970, 1, 1)).total_seconds()) * 1_000_000


def like_logits(truth: WorldTruth, views: Views, month_offsets: FloatArray | None = None) -> FloatArray:
    """Like logit of each view at its time; without month offsets when ``month_offsets`` is None."""
    hour = (views.second % 86_400) // 3600 - FIRST_MINUTE // 60
    logits = pair_like_logits(truth, views.user, views.post) + np.array(truth.params.hour_like_effect)[hour]
    if month_offsets is not None:
        logits += month_offsets[truth.params.day_month(views.second // 86_400)]
    return np.asarray(logits)


def decide_likes(truth: WorldTruth, views: Views, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Which views are liked: first views only, each with its like probability."""
    probability = sigmoid(like_logits(truth, views, np.array(truth.params.month_offsets)))
    return (rng.random(len(views.user)) < probability) & ~views.repeat


def feed_frame(truth: WorldTruth, views: Views, liked: npt.NDArray[np.bool_], rng: np.random.Generator) -> pl.DataFrame:
    """``feed_data`` rows of one chunk: every view, and a like row a short delay after each liked view."""
    delay = np.round(sample_like_delays(rng, int(liked.sum()))).astype(np.int64)
    # Likes stay inside the period, yet strictly after their view.
    last_second = truth.params.period_days * 86_400 - 1
    like_second = np.maximum(np.minimum(views.second[liked] + delay, last_second), views.second[liked] + 1)
    user_id = truth.user_id[np.concatenate([views.user, views.user[liked]])]
    frame = pl.DataFrame(
        {
            Col.TIMESTAMP: np.concatenate([views.second, like_second]) * 1_000_000 + _epoch_us(truth),
            Col.USER_ID: user_id.astype(np.int32),
            Col.POST_ID: truth.post_id[np.concatenate([views.post, views.post[liked]])].astype(np.int32),
            Col.ACTION: np.arange(len(views.user) + int(liked.sum())) >= len(views.user),
            Col.TARGET: np.concatenate([liked, np.zeros(int(liked.sum()), bool)]).astype(np.int32),
        }
    )
    frame = frame.with_columns(
        pl.col(Col.TIMESTAMP).cast(pl.Datetime("us")),
        pl.when(pl.col(Col.ACTION)).then(pl.lit(Action.LIKE)).otherwise(pl.lit(Action.VIEW)).alias(Col.ACTION),
    )
    return frame.sort(Col.USER_ID, Col.TIMESTAMP, maintain_order=True)
