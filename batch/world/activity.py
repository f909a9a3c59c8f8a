"""The ``bursty`` world's activity: each user's own active days and the share of its views on each.

Most users visit on a few days of one burst (a first day drawn by the global day weights, then a few more within
two weeks); the rest are regulars who visit on a few dozen days spread over the whole period. A user's views fall
only on its active days (:mod:`batch.world.views`), so a global time cut near the end catches few users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch.world.designs import Bursts
from batch.world.dist import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class ActiveDays:
    """Per user, its active days and their weights, CSR-style (see :class:`batch.world.truth.WorldTruth`)."""

    ptr: IntArray
    days: IntArray
    weights: FloatArray


def no_active_days(users: int) -> ActiveDays:
    """Every user follows the global day weights."""
    return ActiveDays(np.zeros(users + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))


def generate_active_days(rng: np.random.Generator, users: int, day_weights: FloatArray, bursts: Bursts) -> ActiveDays:
    """Active days of ``users`` users over a period of ``len(day_weights)`` days."""
    period = len(day_weights)
    bursty = rng.random(users) < bursts.bursty_share
    first = rng.choice(period, size=users, p=day_weights)
    extra = np.minimum(rng.poisson(bursts.extra_days_mean, users), bursts.max_days - 1)
    regular = rng.integers(bursts.regular_days[0], bursts.regular_days[1] + 1, users)
    per_user = [
        _burst(rng, int(f), int(e), period, bursts.burst_window_days)
        if b
        else np.sort(rng.choice(period, size=int(r), replace=False, p=day_weights))
        for b, f, e, r in zip(bursty.tolist(), first.tolist(), extra.tolist(), regular.tolist(), strict=True)
    ]
    counts = np.array([len(days) for days in per_user], dtype=np.int64)
    weights = rng.gamma(bursts.day_weight_shape, size=int(counts.sum()))
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    totals = np.add.reduceat(weights, ptr[:-1])
    return ActiveDays(ptr, np.concatenate(per_user).astype(np.int64), weights / np.repeat(totals, counts))


def _burst(rng: np.random.Generator, first: int, extra: int, period: int, window: int) -> IntArray:
    """``first`` and up to ``extra`` later days within ``window`` days after it, inside the period."""
    later = np.arange(first + 1, min(first + window, period - 1) + 1)
    chosen = rng.choice(later, size=min(extra, len(later)), replace=False)
    return np.sort(np.concatenate([[first], chosen])).astype(np.int64)
