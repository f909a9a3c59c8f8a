"""A model's validation figures against the tuned baselines': who is compared with whom, and how sure we are.

A model and a baseline ranked the same users, so they are compared user by user: the bootstrap over users of
their per-user difference (paired), whose interval is much narrower than two independent intervals would suggest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from batch.ranking.metrics import bootstrap_interval
from batch.ranking.recommenders.tuning import HIT_K, Tuned

FloatArray = npt.NDArray[np.float64]
LEVEL: Final = 0.95


@dataclass(frozen=True, slots=True)
class Comparison:
    """One model against the best baseline on the same users.

    Attributes:
        model: The model's name (``control``, ``test``).
        model_hitrate: Its hitrate@5.
        baseline: The best baseline's name.
        baseline_hitrate: Its hitrate@5.
        difference_low: Lower end of the 95% paired bootstrap interval of model minus baseline.
        difference_high: Its upper end.
    """

    model: str
    model_hitrate: float
    baseline: str
    baseline_hitrate: float
    difference_low: float
    difference_high: float

    @property
    def worse(self) -> bool:
        """Whether the model is below the baseline beyond noise: the whole interval of the difference below 0."""
        return self.difference_high < 0

    def describe(self) -> str:
        """One line naming both figures and the interval."""
        return (
            f"{self.model} hitrate@{HIT_K} {self.model_hitrate:.4f} against {self.baseline} {self.baseline_hitrate:.4f}"
            f" (difference {LEVEL:.0%} interval {self.difference_low:+.4f}..{self.difference_high:+.4f})"
        )


@dataclass(frozen=True, slots=True)
class Benchmark:
    """What the benchmark measured on the validation window.

    Attributes:
        users: Users ranked (those with a fresh like in the window, sampled to ``max_eval_users``).
        baselines: Each baseline's tuning on the window.
        models: Each model's per-user hits.
        comparisons: Each model against the best baseline.
        label_users: Users of the label window the baselines' parameters were also chosen on (0: none).
    """

    users: int
    baselines: dict[str, Tuned]
    models: dict[str, FloatArray]
    comparisons: list[Comparison]
    label_users: int = 0

    @property
    def tuning_users(self) -> int:
        """Users the baselines' parameters were chosen on: the window's and the label window's."""
        return self.users + self.label_users

    @property
    def baseline_hitrates(self) -> dict[str, float]:
        """Baseline name -> hitrate@5 on the window (what the version's meta records)."""
        return {name: tuned.hitrate for name, tuned in self.baselines.items()}

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures for the artifact's metadata: hitrates, chosen parameters, comparisons."""
        return {
            "users": self.users,
            "tuning_users": self.tuning_users,
            "baselines": self.baseline_hitrates,
            "baseline_params": {name: dict(tuned.params) for name, tuned in self.baselines.items()},
            "models": {name: _mean(hits) for name, hits in self.models.items()},
            "comparisons": [_comparison_dict(item) for item in self.comparisons],
        }


def compare(models: Mapping[str, FloatArray], baselines: Mapping[str, Tuned], seed: int) -> list[Comparison]:
    """Each model against the baseline with the best hitrate, by a paired bootstrap over users."""
    if not baselines:
        return []
    best = max(baselines.values(), key=lambda tuned: tuned.hitrate)
    comparisons = []
    for name, hits in models.items():
        low, high = bootstrap_interval(hits - best.per_user, seed=seed, level=LEVEL)
        comparisons.append(Comparison(name, _mean(hits), best.name, best.hitrate, low, high))
    return comparisons


def _mean(values: FloatArray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _comparison_dict(item: Comparison) -> dict[str, Any]:
    return {
        "model": item.model,
        "model_hitrate": item.model_hitrate,
        "baseline": item.baseline,
        "baseline_hitrate": item.baseline_hitrate,
        "difference_interval": [item.difference_low, item.difference_high],
        "worse": item.worse,
    }
