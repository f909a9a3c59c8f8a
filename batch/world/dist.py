"""Small numeric building blocks of the synthetic world: exact quotas, tabulated distributions, id ranges."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from batch.world.facts import AGE_RANGE, LIKE_DELAY_QUARTILES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Ages 14..33 are tabulated; from 34 on an exponential tail whose scale was solved so the mean is 27.2. This
# puts the median at 24, the mode at 20 and the quartiles at 19 and 33, like the real users.
_AGE_HEAD_PMF = (
    *(0.005, 0.01, 0.025, 0.05, 0.075, 0.09, 0.095),
    *(0.047, 0.043, 0.04, 0.037),
    *(0.034, 0.0325, 0.031, 0.0295, 0.028, 0.0265, 0.025, 0.0235, 0.022),
)
_AGE_TAIL_SCALE = 9.0272

# Inverse CDF of the like delay, through the real quartiles (50, 93, 135 s), with a short head and a long tail.
_DELAY_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
_DELAY_SECONDS = (4.0, 18.0, *LIKE_DELAY_QUARTILES, 230.0, 420.0, 900.0)

# Relative views per hour for 06:00..23:00: a morning rise, a lunch bump and an evening peak.
_HOUR_VIEW_WEIGHTS = (
    0.45,
    0.65,
    0.85,
    0.9,
    0.85,
    0.85,
    0.95,
    0.9,
    0.85,
    0.85,
    0.9,
    1.0,
    1.1,
    1.25,
    1.4,
    1.45,
    1.3,
    0.9,
)


def apportion(shares: npt.ArrayLike, total: int) -> IntArray:
    """Split ``total`` into integer counts proportional to ``shares`` (largest remainder, exact sum)."""
    weights = np.asarray(shares, dtype=np.float64)
    exact = weights / weights.sum() * total
    counts: IntArray = np.floor(exact).astype(np.int64)
    leftover = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    return counts


def quota_labels(rng: np.random.Generator, shares: npt.ArrayLike, total: int) -> IntArray:
    """Category indices with exactly the apportioned count of each category, in random order."""
    counts = apportion(shares, total)
    return np.asarray(rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int64), counts)), dtype=np.int64)


def spread_ids(rng: np.random.Generator, count: int, first: int, last: int) -> IntArray:
    """``count`` sorted distinct ids in ``first..last`` with random gaps, both ends included."""
    if count < 2 or last - first + 1 <= count:
        return np.arange(first, first + count, dtype=np.int64)
    inner = rng.choice(np.arange(first + 1, last, dtype=np.int64), size=count - 2, replace=False)
    return np.sort(np.concatenate([[first, last], inner]))


def age_pmf() -> tuple[IntArray, FloatArray]:
    """Ages 14..95 and their probabilities."""
    ages = np.arange(AGE_RANGE[0], AGE_RANGE[1] + 1, dtype=np.int64)
    head = np.array(_AGE_HEAD_PMF)
    tail = np.exp(-np.arange(len(ages) - len(head)) / _AGE_TAIL_SCALE)
    tail *= (1.0 - head.sum()) / tail.sum()
    return ages, np.concatenate([head, tail])


def sample_ages(rng: np.random.Generator, count: int) -> IntArray:
    """Ages in exactly the tabulated proportions (apportioned), in random order."""
    ages, pmf = age_pmf()
    return ages[quota_labels(rng, pmf, count)]


def sample_like_delays(rng: np.random.Generator, count: int) -> FloatArray:
    """Seconds between a view and its like: median 93, middle half 50..135."""
    return np.interp(rng.random(count), _DELAY_QUANTILES, _DELAY_SECONDS)


def hour_view_shape() -> FloatArray:
    """Share of a day's views in each hour 06..23 (sums to 1)."""
    weights = np.array(_HOUR_VIEW_WEIGHTS)
    return np.asarray(weights / weights.sum())


def hour_like_effect() -> FloatArray:
    """Logit added to the like probability in each hour 06..23: highest in the evening around 21:00."""
    hours = np.arange(6, 24)
    return np.asarray(0.3 * np.cos(2 * np.pi * (hours - 21) / 24))


def zipf_weights(count: int, exponent: float) -> FloatArray:
    """Normalised weights 1/rank**exponent for ranks 1..count."""
    weights = 1.0 / np.arange(1, count + 1, dtype=np.float64) ** exponent
    return np.asarray(weights / weights.sum())


def sigmoid(logits: npt.NDArray[np.floating]) -> FloatArray:
    """The logistic function."""
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)


def segment_starts(counts: IntArray) -> IntArray:
    """Start offset of each segment when segments of the given lengths are laid end to end."""
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
