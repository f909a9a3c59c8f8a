"""A version ready to be scored: its models (trained now or loaded) and the features at as_of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import catboost

from batch.pipeline.collab_features import CollabParams
from batch.pipeline.comparison import Benchmark
from batch.pipeline.cutoffs import Cutoff, Windows
from batch.pipeline.embed import EmbeddingInfo
from batch.pipeline.embed_features import EmbedParams
from batch.pipeline.feature_sets import FeatureSets
from batch.pipeline.features import Encoders, FeatureSet
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.source import Source
from common.ab import TEST


@dataclass(frozen=True, slots=True)
class Models:
    """Trained models and what scoring them needs besides features.

    Attributes:
        by_group: CatBoost model by A/B group (``control``, ``test``), those trained.
        version: The version of the build that trained them.
        encoders: Categorical codes they were trained with.
        metrics: Their validation figures.
        embed_params: Settings of the ``test`` model's embedding features.
        collab_params: Settings of the collaborative features they were trained on.
    """

    by_group: dict[str, catboost.CatBoost]
    version: str
    encoders: Encoders
    metrics: dict[str, float] = field(default_factory=dict)
    embed_params: EmbedParams = field(default_factory=EmbedParams)
    collab_params: CollabParams = field(default_factory=CollabParams)

    @classmethod
    def from_saved(
        cls,
        by_group: dict[str, catboost.CatBoost],
        version: str,
        encoders: Encoders,
        metrics: dict[str, float],
        saved: Mapping[str, Any],
    ) -> Models:
        """Models loaded with the settings their build saved (``saved``: ``embed_params``, ``collab_params``)."""
        embed_params = EmbedParams.from_saved(saved.get("embed_params") or {})
        collab_params = CollabParams.from_saved(saved.get("collab_params") or {}, embed_params.seed)
        return cls(by_group, version, encoders, metrics, embed_params, collab_params)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A version ready to be scored: its models and the features at as_of.

    Attributes:
        source: What was read.
        models: The models that score it.
        features: The feature sets at as_of (``Cutoff.SCORE``) only.
        windows: The training and validation windows; None when the models were loaded, not trained.
        rows: Row counts for the artifact's metadata.
        calibration: Predicted against observed like rate on the validation rows, by decile.
        benchmark: The models against the tuned baselines on the validation window; None when not trained here.
    """

    source: Source
    models: Models
    features: FeatureSets
    windows: Windows | None = None
    rows: dict[str, int] = field(default_factory=dict)
    calibration: list[tuple[float, float]] = field(default_factory=list)
    benchmark: Benchmark | None = None

    @property
    def score_features(self) -> FeatureSet:
        """The base features at as_of."""
        return self.features.base[Cutoff.SCORE]

    def inputs(self, model: str) -> ModelInputs:
        """What ``model`` reads at as_of."""
        return self.features.inputs(Cutoff.SCORE, model)

    def models_meta(self) -> dict[str, str]:
        """What the version's meta records as its models: the model version per group, and the embedding method."""
        models = dict.fromkeys(self.models.by_group, self.models.version)
        if self.features.embedding is not None and TEST in models:
            models["embedding"] = embedding_label(self.features.embedding)
        return models


def embedding_label(info: EmbeddingInfo) -> str:
    """The embedding method and dimension, e.g. ``tfidf-svd-64``."""
    return f"{info.method}-{info.dim}"
