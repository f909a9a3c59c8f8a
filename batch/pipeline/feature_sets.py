"""Steps features, collab and embeddings: every model's base and collaborative features at each cutoff, and the
``test`` model's embedding features at the same cutoffs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Engine

from batch.pipeline.collab_features import CollabModel, CollabParams, fit_collab
from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.embed import EmbeddingInfo, embed_posts, embedding_cache_dir
from batch.pipeline.embed_features import EmbeddingFeatureSet, EmbedParams, build_embedding_features
from batch.pipeline.features import Encoders, FeatureSet, build_features, sorted_ids, text_stats
from batch.pipeline.feed_counts import load_feed_counts
from batch.pipeline.inputs import ModelInputs
from batch.pipeline.nn_feature import NN_SCORE, TEST_WITHOUT_NN, add_nn_feature
from batch.pipeline.source import Source
from batch.pipeline.steps import step
from batch.pipeline.viewed import load_viewed
from batch.ranking.sequence.params import SequenceParams
from common.ab import TEST
from common.columns import Col
from common.settings import Settings

Value = TypeVar("Value")


@dataclass(frozen=True, slots=True)
class FeatureSets:
    """The feature sets of a run by cutoff, and the ``test`` model's embedding features at the same cutoffs.

    Attributes:
        encoders: Categorical codes of every set.
        base: The base features (every model's) by cutoff.
        embeddings: The ``test`` model's embedding features by cutoff; empty when no ``test`` model is trained.
        embedding: How the post vectors were made; None without them.
        embed_params: Settings of the embedding features.
        collab: The collaborative features' post side by cutoff (every model reads them).
    """

    encoders: Encoders
    base: Mapping[Cutoff, FeatureSet]
    embeddings: Mapping[Cutoff, EmbeddingFeatureSet] = field(default_factory=dict)
    embedding: EmbeddingInfo | None = None
    embed_params: EmbedParams = field(default_factory=EmbedParams)
    collab: Mapping[Cutoff, CollabModel] = field(default_factory=dict)

    def inputs(self, cutoff: Cutoff, model: str) -> ModelInputs:
        """What ``model`` reads at ``cutoff``: the base and collaborative features; ``test`` adds the embedding
        features, and :data:`TEST_WITHOUT_NN` the same without the sequence score."""
        embedding = self.embeddings[cutoff] if model in (TEST, TEST_WITHOUT_NN) else None
        if embedding is not None and model == TEST_WITHOUT_NN:
            embedding = replace(embedding, spaces=tuple(s for s in embedding.spaces if s.name != NN_SCORE))
        return ModelInputs(self.base[cutoff], embedding, self.collab.get(cutoff))

    def without(self, cutoff: Cutoff) -> FeatureSets:
        """The sets of every other cutoff, so this one's can be freed."""
        return self._kept(lambda key: key != cutoff)

    def only(self, cutoff: Cutoff) -> FeatureSets:
        """The sets of one cutoff, so the others can be freed."""
        return self._kept(lambda key: key == cutoff)

    def _kept(self, keep: Callable[[Cutoff], bool]) -> FeatureSets:
        """Every kind of set (base, embeddings, collab) at the cutoffs ``keep`` accepts."""
        return replace(
            self, base=_kept(self.base, keep), embeddings=_kept(self.embeddings, keep), collab=_kept(self.collab, keep)
        )


def base_features(
    engine: Engine, source: Source, encoders: Encoders, cutoffs: Mapping[Cutoff, datetime]
) -> dict[Cutoff, FeatureSet]:
    """Step features: the base feature set at each cutoff, from one scan of the feed per concern."""
    with step("features") as done:
        text = text_stats(source.posts)
        counts = load_feed_counts(engine, list(cutoffs.values()))
        user_ids, post_ids = sorted_ids(source.users, Col.USER_ID), sorted_ids(source.posts, Col.POST_ID)
        viewed = load_viewed(engine, user_ids, post_ids, list(cutoffs.values()))
        sets = {
            name: build_features(source.users, source.posts, text, count, source.likes_before(cutoff), encoders, shown)
            for (name, cutoff), count, shown in zip(cutoffs.items(), counts, viewed, strict=True)
        }
        done.rows = sum(count.user_topics.height for count in counts)
    return sets


def collab_features(
    source: Source, base: Mapping[Cutoff, FeatureSet], params: CollabParams
) -> dict[Cutoff, CollabModel]:
    """Step collab: the collaborative features' post side at every cutoff of ``base``, from the likes before it."""
    with step("collab") as done:
        models = {cutoff: fit_collab(features, source.likes, params) for cutoff, features in base.items()}
        done.rows = sum(int(features.liked_indptr[-1]) for features in base.values())
    return models


def embedding_features(
    engine: Engine, cache_dir: Path, source: Source, base: Mapping[Cutoff, FeatureSet], params: EmbedParams
) -> tuple[dict[Cutoff, EmbeddingFeatureSet], EmbeddingInfo]:
    """Steps embeddings and nn feature: post embeddings and the ``test`` model's features at every cutoff of
    ``base``, the sequence model's score among them unless ``params.nn_feature`` is off."""
    with step("embeddings") as done:
        embeddings = embed_posts(source.posts, cache_dir, method=params.method)
        sets = {
            cutoff: build_embedding_features(embeddings, source.likes, features.cutoff, params)
            for cutoff, features in base.items()
        }
        done.rows = embeddings.post_ids.size
    if params.nn_feature:
        sets = add_nn_feature(engine, source, embeddings, sets, base, SequenceParams(seed=params.seed))
    return sets, embeddings.info


def feature_sets(
    settings: Settings,
    engine: Engine,
    source: Source,
    encoders: Encoders,
    cutoffs: Mapping[Cutoff, datetime],
    with_embeddings: bool,
    embed_params: EmbedParams,
    embedding_cache: Path | None = None,
) -> FeatureSets:
    """Steps features, collab and embeddings (the last only when a ``test`` model is trained or scores).

    ``embedding_cache`` is the folder of the post vectors' cache; None = the one under the settings' data dir.
    """
    base = base_features(engine, source, encoders, cutoffs)
    collab = collab_features(source, base, CollabParams(seed=embed_params.seed))
    if not with_embeddings:
        return FeatureSets(encoders, base, embed_params=embed_params, collab=collab)
    cache_dir = embedding_cache or embedding_cache_dir(settings.data_dir)
    embeddings, info = embedding_features(engine, cache_dir, source, base, embed_params)
    return FeatureSets(encoders, base, embeddings, info, embed_params, collab)


def _kept(by_cutoff: Mapping[Cutoff, Value], keep: Callable[[Cutoff], bool]) -> dict[Cutoff, Value]:
    return {key: value for key, value in by_cutoff.items() if keep(key)}
