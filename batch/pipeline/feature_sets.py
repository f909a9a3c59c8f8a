"""Steps features, collab and embeddings: every model's base and collaborative features at each cutoff, and the
``test`` model's embedding features at the same cutoffs.

The base sets of every cutoff come from one scan of the feed; the model features on top of them are made one group
of cutoffs at a time (:class:`CutoffFeatures`), so a build need not hold the post sides and sequence scores of
cutoffs its current step does not read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from batch.pipeline.cluster_lift import with_cluster_lifts
from batch.pipeline.collab_features import CollabModel, CollabParams, fit_collab
from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.embed import EmbeddingInfo, PostEmbeddings, embed_posts, embedding_cache_dir
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
    engine: Engine,
    source: Source,
    embeddings: PostEmbeddings,
    base: Mapping[Cutoff, FeatureSet],
    params: EmbedParams,
    collab: Mapping[Cutoff, CollabModel] | None = None,
) -> dict[Cutoff, EmbeddingFeatureSet]:
    """Steps embedding features and nn feature: the ``test`` model's features at every cutoff of ``base``, the
    sequence model's score among them unless ``params.nn_feature`` is off. ``collab``: the same cutoffs'
    collaborative post sides, whose co-view vectors the text clusters reuse (None: made again)."""
    with step("embedding features") as done:
        sets = {
            cutoff: with_cluster_lifts(
                build_embedding_features(embeddings, source.likes, cutoff_features.cutoff, params),
                cutoff_features,
                embeddings,
                params,
                collab[cutoff].clusters.vectors if collab and cutoff in collab else None,
            )
            for cutoff, cutoff_features in base.items()
        }
        done.rows = len(sets)
    if params.nn_feature:
        sets = add_nn_feature(engine, source, embeddings, sets, base, SequenceParams(seed=params.seed))
    return sets


def post_embeddings(posts: pl.DataFrame, cache_dir: Path, params: EmbedParams) -> PostEmbeddings:
    """Step embeddings: every post's text vector (from the cache when it holds them)."""
    with step("embeddings") as done:
        embeddings = embed_posts(posts, cache_dir, method=params.method)
        done.rows = embeddings.post_ids.size
    return embeddings


@dataclass(frozen=True, slots=True)
class CutoffFeatures:
    """Makes the model features (collaborative, and the ``test`` model's embedding features) on top of base sets,
    one group of cutoffs at a time, so that a build holds only the cutoffs its current step reads.

    Attributes:
        engine: Engine on the source database (the nn feature reads views).
        source: What the run read.
        encoders: Categorical codes of every set.
        embed_params: Settings of the embedding features.
        embeddings: The post vectors; None when no ``test`` model is trained or scores.
        collab_params: Settings of the collaborative features.
    """

    engine: Engine
    source: Source
    encoders: Encoders
    embed_params: EmbedParams
    embeddings: PostEmbeddings | None
    collab_params: CollabParams

    def at(self, base: Mapping[Cutoff, FeatureSet]) -> FeatureSets:
        """Steps collab, embedding features and nn feature at every cutoff of ``base``."""
        collab = collab_features(self.source, base, self.collab_params)
        if self.embeddings is None:
            return FeatureSets(self.encoders, base, embed_params=self.embed_params, collab=collab)
        sets = embedding_features(self.engine, self.source, self.embeddings, base, self.embed_params, collab)
        return FeatureSets(self.encoders, base, sets, self.embeddings.info, self.embed_params, collab)


def cutoff_features(
    settings: Settings,
    engine: Engine,
    source: Source,
    encoders: Encoders,
    with_embeddings: bool,
    embed_params: EmbedParams,
    embedding_cache: Path | None = None,
    collab_params: CollabParams | None = None,
) -> CutoffFeatures:
    """What makes the model features of a run; embeds the posts first when a ``test`` model is trained or scores.

    ``embedding_cache`` is the folder of the post vectors' cache; None = the settings' (``embedding_cache_dir``).
    ``collab_params``: None = the defaults, seeded as the embedding features.
    """
    embeddings = None
    if with_embeddings:
        cache_dir = embedding_cache or embedding_cache_dir(settings)
        embeddings = post_embeddings(source.posts, cache_dir, embed_params)
    collab = collab_params if collab_params is not None else CollabParams(seed=embed_params.seed)
    return CutoffFeatures(engine, source, encoders, embed_params, embeddings, collab)


def feature_sets(
    settings: Settings,
    engine: Engine,
    source: Source,
    encoders: Encoders,
    cutoffs: Mapping[Cutoff, datetime],
    with_embeddings: bool,
    embed_params: EmbedParams,
    embedding_cache: Path | None = None,
    collab_params: CollabParams | None = None,
) -> FeatureSets:
    """Steps features, embeddings, collab, embedding features and nn feature, at every cutoff at once."""
    base = base_features(engine, source, encoders, cutoffs)
    maker = cutoff_features(
        settings, engine, source, encoders, with_embeddings, embed_params, embedding_cache, collab_params
    )
    return maker.at(base)
