"""Step weigh: how much of each correction a corrected model keeps, chosen on the validation window.

A correction (``batch.pipeline.train.fit_correction_trees``) learns what the added columns explain in the label
window. Where they say little about what users like next (text on a world whose tastes follow co-likes), its trees
fit the window's noise and the corrected model ranks below control. Each correction is therefore added to
control's trees at the weight, of ``TrainParams.correction_weights``, whose lists hit most on the validation
window: the window after the training rows' labels, whose likes no fit has read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import catboost
import polars as pl

from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.feature_sets import FeatureSets
from batch.pipeline.options import TrainParams
from batch.pipeline.samples import Samples
from batch.pipeline.score import score_users
from batch.pipeline.steps import step
from batch.pipeline.train import HITRATE_AT, Fitted, LabelledSet, corrected, evaluation_users, hitrate
from common.ab import CONTROL

log = logging.getLogger(__name__)

WEIGHT_SUFFIX = "correction_weight"


@dataclass(frozen=True, slots=True)
class Weighed:
    """The models with their corrections at the chosen weights, and the weights by model name."""

    models: dict[str, catboost.CatBoost]
    weights: dict[str, float]

    def figures(self) -> dict[str, float]:
        """The weights as validation figures (``test_correction_weight``), for the version's meta."""
        return {f"{name}_{WEIGHT_SUFFIX}": weight for name, weight in self.weights.items()}


def hitrate_by_weight(
    base: catboost.CatBoost,
    trees: catboost.CatBoost,
    valid: LabelledSet,
    window_likes: pl.DataFrame,
    params: TrainParams,
) -> dict[float, float]:
    """Hitrate@5 on the validation window of base's trees plus the correction at each of the weights."""
    users = evaluation_users(valid, window_likes, params.max_eval_users, params.seed)
    rates = {}
    for weight in params.correction_weights:
        top = score_users(corrected(base, trees, weight), valid.inputs, users, HITRATE_AT, threads=params.threads)
        rates[weight] = hitrate(top.post_ids, users, window_likes)
    return rates


def best_weight(rates: dict[float, float]) -> float:
    """The weight whose lists hit most; of equals the largest, the correction as fitted being the model's design."""
    return max(rates, key=lambda weight: (rates[weight], weight))


def weigh_corrections(
    fitted: Fitted, sets: FeatureSets, samples: Samples, window_likes: pl.DataFrame, params: TrainParams
) -> Weighed:
    """Step weigh: each correction's weight chosen on the validation window (:func:`best_weight`); a single
    configured weight, or no correction, skips the scoring."""
    with step("weigh") as done:
        weights: dict[str, float] = {}
        for name, trees in fitted.corrections.items():
            if len(params.correction_weights) == 1:
                weights[name] = params.correction_weights[0]
                continue
            valid = LabelledSet(sets.inputs(Cutoff.VALID, name), samples.valid)
            rates = hitrate_by_weight(fitted.standalone[CONTROL], trees, valid, window_likes, params)
            weights[name] = best_weight(rates)
            shown = " ".join(f"{weight:g}:{rate:.4f}" for weight, rate in rates.items())
            log.info("weigh: %s correction weight %g (validation hitrate@5 by weight %s)", name, weights[name], shown)
            done.rows += valid.samples.height
    return Weighed(fitted.models(weights), weights)
