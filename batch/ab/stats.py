"""The statistics of the A/B report: intervals for a proportion and a difference, the two-proportion z-test, and
the sample-ratio-mismatch check. Closed forms (normal approximations), so every figure can be checked by hand."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

Z_95: Final = 1.959963984540054
SRM_ALPHA: Final = 0.001


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def wilson_interval(hits: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion (good at small counts and near 0 or 1); NaN without observations."""
    if total == 0:
        return (math.nan, math.nan)
    share = hits / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (centre - half, centre + half)


@dataclass(frozen=True, slots=True)
class Difference:
    """test - control of two proportions.

    Attributes:
        estimate: Difference of the two shares.
        low: Lower end of its 95% interval (normal approximation, unpooled standard error).
        high: Upper end.
        z: Two-proportion z statistic (pooled standard error).
        p_value: Two-sided p-value of ``z``.
    """

    estimate: float
    low: float
    high: float
    z: float
    p_value: float


def two_proportion_test(control_hits: int, control_n: int, test_hits: int, test_n: int) -> Difference:
    """Difference test - control with a 95% interval and the two-sided two-proportion z-test."""
    if control_n == 0 or test_n == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, math.nan)
    control, test = control_hits / control_n, test_hits / test_n
    estimate = test - control
    spread = math.sqrt(control * (1 - control) / control_n + test * (1 - test) / test_n)
    pooled = (control_hits + test_hits) / (control_n + test_n)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / test_n))
    z = estimate / pooled_se if pooled_se > 0 else 0.0
    return Difference(estimate, estimate - Z_95 * spread, estimate + Z_95 * spread, z, normal_two_sided_p(z))


@dataclass(frozen=True, slots=True)
class SampleRatioCheck:
    """Whether the users seen in each group fit the split the version was published with.

    Attributes:
        version: The version whose users were counted.
        control_percent: The split's share of control users (0..100).
        control_users: Users served as control.
        test_users: Users served as test.
        chi2: Pearson chi-square statistic (1 degree of freedom).
        p_value: Its p-value.
        mismatch: True when ``p_value < 0.001``: the groups are not comparable, do not trust the difference.
    """

    version: str
    control_percent: int
    control_users: int
    test_users: int
    chi2: float
    p_value: float
    mismatch: bool


def sample_ratio_check(version: str, control_users: int, test_users: int, control_percent: int) -> SampleRatioCheck:
    """Pearson chi-square goodness of fit of the two group sizes to ``control_percent``."""
    total = control_users + test_users
    expected = (total * control_percent / 100, total * (100 - control_percent) / 100)
    chi2 = sum(_pearson_term(seen, wanted) for seen, wanted in zip((control_users, test_users), expected, strict=True))
    # With one degree of freedom chi2 is the square of a standard normal.
    p_value = normal_two_sided_p(math.sqrt(chi2)) if math.isfinite(chi2) else 0.0
    return SampleRatioCheck(version, control_percent, control_users, test_users, chi2, p_value, p_value < SRM_ALPHA)


def _pearson_term(seen: int, wanted: float) -> float:
    if wanted > 0:
        return (seen - wanted) ** 2 / wanted
    return math.inf if seen > 0 else 0.0  # a group the split leaves empty has users: a certain mismatch
