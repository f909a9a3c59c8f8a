"""``postrec build`` and ``postrec score``: the offline batch as named steps over typed values.

build: validate -> extract -> windows -> features (base sets of the three cutoffs, one scan) -> samples -> tune
(the baselines on the label window) -> embeddings -> [collab -> embedding features -> nn feature] at the training
cutoff -> train -> the same at the validation cutoff -> weigh -> evaluate -> benchmark -> the same at as_of ->
(guard) -> save -> score -> publish. The guard stops a build whose model validation ranks below the best seen-aware
baseline.
score: validate -> extract -> load model -> features -> embeddings -> collab -> embedding features -> nn feature ->
score -> publish (an existing artifact, fresh features).

Two models are trained on the same rows: ``control`` (the base and collaborative features) and ``test`` (the same
plus the embedding features), and each user is scored only by the model of its A/B group; a split that sends every
user to one group trains only that group's model.

Each step logs one line with its rows, seconds and RSS. Nothing reaches Redis before the publish step, so a
failure in any earlier step (PostgreSQL unreachable, invalid data, a crash) leaves what is served untouched.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl
import redis
from sqlalchemy.engine import Engine

from batch.pipeline.artifacts import latest_artifact_path, load_artifact, save_artifact
from batch.pipeline.benchmark import benchmark_models
from batch.pipeline.cutoffs import Cutoff, WindowChoice, choose_windows
from batch.pipeline.embed_features import EmbedParams
from batch.pipeline.feature_sets import FeatureSets, base_features, cutoff_features, feature_sets
from batch.pipeline.features import FeatureSet, fit_encoders
from batch.pipeline.guard import check_publishable
from batch.pipeline.label_tuning import models_collab_params, tune_on_label_window
from batch.pipeline.nn_feature import nn_feature_enabled
from batch.pipeline.options import BuildOptions, TrainParams
from batch.pipeline.prepared import Models, Prepared, embedding_label
from batch.pipeline.samples import labelled_rows
from batch.pipeline.score import popular_order, score_all
from batch.pipeline.source import Source, read_source
from batch.pipeline.steps import step
from batch.pipeline.train import train_models, validate_models
from batch.pipeline.weigh import weigh_corrections
from batch.publish.release import Release, publish_release, utc_now, version_meta
from batch.ranking.topk import TopK
from common.ab import TEST
from common.columns import Col
from common.errors import ArtifactMismatchError, StoreUnavailableError
from common.keys import KeyLayout
from common.redis_clients import Role, redis_client
from common.settings import Settings
from common.urls import mask_url

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Built:
    """A finished run: what was prepared, every user's top K, and the version it replaced (None if none)."""

    prepared: Prepared
    rankings: TopK
    previous: str | None = None

    @property
    def version(self) -> str:
        """The new version's id."""
        return self.prepared.source.version


def prepare_version(settings: Settings, engine: Engine, options: BuildOptions) -> Prepared:
    """Everything up to trained, validated models and the features at as_of (``postrec build`` and ``refresh``)."""
    source = read_source(engine, options)
    params, wanted = options.params, options.wanted_models(settings.control_percent)
    chosen = choose_training_windows(source, params)
    windows = chosen.windows
    encoders = fit_encoders(source.users, source.posts)
    nn_feature = nn_feature_enabled(options.nn_feature and TEST in wanted)
    embed_params = EmbedParams(seed=params.seed, method=options.embedding, nn_feature=nn_feature)
    base = base_features(engine, source, encoders, {cutoff: windows.cutoff(cutoff) for cutoff in Cutoff})
    samples = labelled_rows(engine, base, windows, params, source.likes)
    label_grids = tune_on_label_window(base[Cutoff.TRAIN], source.likes, windows, params)
    collab_params = models_collab_params(label_grids, params.seed)
    maker = cutoff_features(
        settings, engine, source, encoders, TEST in wanted, embed_params, options.embedding_cache, collab_params
    )
    # Each cutoff's post side, embedding features and sequence scores are made when a step reads them and dropped
    # after: at full scale holding all three cutoffs' through training peaked at 4.3 GB.
    fitted = train_models(maker.at(_pop(base, Cutoff.TRAIN)), samples, params, wanted)
    sample_rows = {"train_rows": samples.train.height, "valid_rows": samples.valid.height}
    samples = samples.without_training()
    window_likes = source.likes.filter(pl.col(Col.TIMESTAMP) >= windows.valid_start)
    valid_sets = maker.at(_pop(base, Cutoff.VALID))
    weighed = weigh_corrections(fitted, valid_sets, samples, window_likes, params)
    models = weighed.models
    validation = validate_models(models, valid_sets, samples, window_likes, params)
    benchmark = benchmark_models(models, valid_sets, source, window_likes, params, label_grids)
    del valid_sets
    rows = {"users": source.users.height, "posts": source.posts.height, "likes": source.likes.height}
    rows |= sample_rows | chosen.rows()
    metrics = validation.metrics | weighed.figures()
    trained = Models(models, source.version, encoders, metrics, embed_params, collab_params)
    return Prepared(source, trained, maker.at(base), windows, rows, validation.calibration, benchmark)


def _pop(base: dict[Cutoff, FeatureSet], cutoff: Cutoff) -> dict[Cutoff, FeatureSet]:
    """One cutoff's base set, taken out of ``base`` so that it is freed once its step is done."""
    return {cutoff: base.pop(cutoff)}


def choose_training_windows(source: Source, params: TrainParams) -> WindowChoice:
    """Step windows: the label and validation windows from the likes before as_of, logged with what they hold."""
    with step("windows") as done:
        chosen = choose_windows(source.likes, source.as_of, params.windows)
        log.info("windows: %s", chosen.describe())
        done.rows = chosen.label.likes + chosen.valid.likes
    return chosen


def save_models(settings: Settings, prepared: Prepared, params: TrainParams) -> None:
    """Step save: write the models' artifact under data_dir/models/<version>/."""
    with step("save") as done:
        models, windows = prepared.models, prepared.windows
        metadata: dict[str, Any] = {
            "as_of": prepared.source.as_of.isoformat(),
            "created_at": utc_now(),
            "windows": windows.to_dict() if windows is not None else {},
            "params": asdict(params),
            "metrics": models.metrics,
            "rows": prepared.rows,
            "models": sorted(models.by_group),
            "embed_params": asdict(models.embed_params),
            "collab_params": asdict(models.collab_params),
        }
        if prepared.benchmark is not None:
            metadata["benchmark"] = prepared.benchmark.summary()
        if prepared.features.embedding is not None:
            metadata["embedding"] = embedding_label(prepared.features.embedding)
        save_artifact(settings.data_dir, prepared.source.version, models.by_group, models.encoders, metadata)
        done.rows = len(models.by_group)


def release_of(prepared: Prepared, rankings: TopK, settings: Settings, k: int) -> Release:
    """Everything the version holds in Redis."""
    source = prepared.source
    meta = version_meta(
        version=source.version,
        as_of=source.as_of,
        settings=settings,
        models=prepared.models_meta(),
        k=k,
        users=int((rankings.post_ids[:, 0] >= 0).sum()),
        posts=source.posts.height,
        metrics=prepared.models.metrics,
        baselines=prepared.benchmark.baseline_hitrates if prepared.benchmark else None,
    )
    liked = source.likes.select(Col.USER_ID, Col.POST_ID)
    return Release(meta, rankings, source.posts, popular_order(prepared.score_features).tolist(), liked)


def publish(prepared: Prepared, rankings: TopK, settings: Settings, k: int) -> str | None:
    """Step publish: write the version to Redis, verify it and make it live. Returns the version it replaced."""
    with step("publish") as done:
        client = redis_client(settings.redis_url, Role.BATCH)
        try:
            release = release_of(prepared, rankings, settings, k)
            previous = publish_release(client, KeyLayout(settings.prefix), release, settings.version_grace_seconds)
        finally:
            client.close()
        done.rows = release.meta.users
    return previous


def check_store(settings: Settings) -> None:
    """Fail before hours of work when Redis does not answer.

    Raises:
        StoreUnavailableError: Redis cannot be reached.
    """
    client = redis_client(settings.redis_url, Role.PROBE)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreUnavailableError(
            f"Redis at {mask_url(settings.redis_url)} is unreachable ({exc}): start it first"
        ) from None
    finally:
        client.close()


def score_and_publish(prepared: Prepared, settings: Settings, options: BuildOptions) -> Built:
    """Steps score and publish (the latter only when the options ask for it)."""
    rankings = score_all(prepared, settings, options.k, options.params.threads)
    previous = publish(prepared, rankings, settings, options.k) if options.publish else None
    return Built(prepared, rankings, previous)


def run_build(settings: Settings, engine: Engine, options: BuildOptions) -> Built:
    """Validate, extract, build features, train, evaluate, save, score and publish a new version."""
    if options.publish:
        check_store(settings)
    prepared = prepare_version(settings, engine, options)
    if options.publish:  # before saving: `postrec score` must not pick up a refused model
        check_publishable(prepared.benchmark, options.allow_worse)
    save_models(settings, prepared, options.params)
    return score_and_publish(prepared, settings, options)


def load_saved_models(options: BuildOptions, settings: Settings) -> Models:
    """Step load model: the chosen (or latest) artifact; its encoders code this run's features."""
    with step("load model") as done:
        artifact = load_artifact(options.model_path or latest_artifact_path(settings.data_dir))
        metadata = artifact.metadata
        models = Models.from_saved(
            artifact.models, artifact.version, artifact.encoders, dict(metadata["metrics"]), metadata
        )
        done.rows = len(artifact.models)
    return models


def check_feature_names(models: Models, sets: FeatureSets) -> None:
    """Refuse to score a loaded model with features it was not trained on (e.g. an artifact from before the
    collaborative features, or embeddings of another method).

    Raises:
        ArtifactMismatchError: The names differ.
    """
    for name, model in models.by_group.items():
        expected = list(model.feature_names_ or [])
        built = sets.inputs(Cutoff.SCORE, name).names
        if built != expected:
            added, dropped = sorted(set(built) - set(expected)), sorted(set(expected) - set(built))
            raise ArtifactMismatchError(
                f"the {name} model reads other features than this run builds (this code adds {added or 'none'}, "
                f"drops {dropped or 'none'}, or reorders them): run `postrec build` to train a model for this code"
            )


def prepare_rescore(settings: Settings, engine: Engine, options: BuildOptions, models: Models) -> Prepared:
    """Fresh features at as_of for models trained earlier (``postrec score`` and ``refresh --rescore``)."""
    source = read_source(engine, options)
    cutoffs = {Cutoff.SCORE: source.as_of}
    with_embeddings = TEST in models.by_group
    sets = feature_sets(
        settings,
        engine,
        source,
        models.encoders,
        cutoffs,
        with_embeddings,
        models.embed_params,
        options.embedding_cache,
        models.collab_params,
    )
    check_feature_names(models, sets)
    return Prepared(source, models, sets)


def run_score(settings: Settings, engine: Engine, options: BuildOptions) -> Built:
    """Rescore every user with an existing artifact on fresh features and publish the result."""
    if options.publish:
        check_store(settings)
    models = load_saved_models(options, settings)
    prepared = prepare_rescore(settings, engine, options, models)
    return score_and_publish(prepared, settings, options)
