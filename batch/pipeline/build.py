"""``postrec build`` and ``postrec score``: the offline batch as a list of named steps.

build: validate -> extract -> features -> embeddings -> samples -> train -> evaluate -> save -> score -> publish.
score: validate -> extract -> load model -> features -> embeddings -> score -> publish (an existing artifact, fresh
features).

Two models are trained on the same rows: ``control`` (the tabular features) and ``test`` (the same plus the embedding
features), and each user is scored only by the model of its A/B group; a split that sends every user to one group
trains only that group's model.

Each step logs one line with its rows, seconds and RSS. Nothing reaches Redis before the publish step, so a
failure in any earlier step (PostgreSQL unreachable, invalid data, a crash) leaves what is served untouched.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import catboost
import numpy as np
import numpy.typing as npt
import polars as pl
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.pipeline.artifacts import Artifact, MissingArtifactError, latest_artifact_path, load_artifact, save_artifact
from batch.pipeline.embed import EmbeddingInfo, embed_posts, embedding_cache_dir
from batch.pipeline.embed_features import EmbeddingFeatureSet, EmbedParams, build_embedding_features
from batch.pipeline.extract import load_feed, load_posts, load_users
from batch.pipeline.features import (
    FEATURE_NAMES,
    Encoders,
    FeatureSet,
    build_features,
    fit_encoders,
    sorted_ids,
    text_stats,
)
from batch.pipeline.feed_counts import FeedCounts, load_feed_counts
from batch.pipeline.samples import (
    SAMPLE_BASE,
    count_window_views,
    load_window_views,
    window_samples,
)
from batch.pipeline.score import popular_order, score_users
from batch.pipeline.train import LabelledSet, TrainParams, Windows, calibration, evaluate, fit_model, plan_windows
from batch.pipeline.validate import validate_source
from batch.pipeline.viewed import load_viewed
from batch.publish.release import Release, new_version_id, publish_release, utc_now, version_meta
from batch.ranking.topk import TopK, merge_top
from common.ab import CONTROL, TEST, assign_group
from common.columns import Action, Col, Table
from common.errors import ArtifactMismatchError, SourceUnavailableError, StoreUnavailableError
from common.keys import KeyLayout
from common.logs import peak_rss_mb, release_free_heap, rss_mb
from common.redis_clients import Role, redis_client
from common.settings import Settings

log = logging.getLogger(__name__)

SHOWN_ONLY: Final = 0.0
# Sizing the user sample before any count is known: a little above the real like rate, so rows stay under the cap.
EXPECTED_LIKE_RATE: Final = 0.15


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What one run does.

    Attributes:
        as_of: Cutoff: only feed rows before it are used; None = the end of the data (next midnight after it).
        k: List length per user.
        params: Training parameters.
        model_path: For ``score``: the artifact to use; None = the latest.
        publish: False stops before Redis (evaluation runs).
        models: The models to train; None = those the A/B split of the settings serves.
    """

    as_of: datetime | None = None
    k: int = 200
    params: TrainParams = field(default_factory=TrainParams)
    model_path: Path | None = None
    publish: bool = True
    models: tuple[str, ...] | None = None


@dataclass
class BuildState:
    """What the steps hand each other."""

    settings: Settings
    engine: Engine
    options: BuildOptions
    as_of: datetime = datetime.min
    version: str = ""
    windows: Windows | None = None
    users: pl.DataFrame = field(default_factory=pl.DataFrame)
    posts: pl.DataFrame = field(default_factory=pl.DataFrame)
    likes: pl.DataFrame = field(default_factory=pl.DataFrame)
    encoders: Encoders | None = None
    features: dict[str, FeatureSet] = field(default_factory=dict)
    train_set: LabelledSet | None = None
    valid_set: LabelledSet | None = None
    model: catboost.CatBoost | None = None
    model_version: str = ""
    test_model: catboost.CatBoost | None = None
    embeddings: dict[str, EmbeddingFeatureSet] = field(default_factory=dict)
    embedding: EmbeddingInfo | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    rankings: TopK | None = None
    previous: str | None = None
    embed_params: EmbedParams = field(default_factory=EmbedParams)
    sample_rows: dict[str, int] = field(default_factory=dict)
    calibration: list[tuple[float, float]] = field(default_factory=list)


Step = Callable[[BuildState], int]


def served_groups(control_percent: int) -> tuple[str, ...]:
    """The groups the split sends any user to: only one at 100 or 0 percent."""
    if control_percent >= 100:
        return (CONTROL,)
    return (TEST,) if control_percent <= 0 else (CONTROL, TEST)


def wanted_models(state: BuildState) -> tuple[str, ...]:
    """The models this run trains: the options' choice, else those the split serves."""
    return state.options.models or served_groups(state.settings.control_percent)


def trained_models(state: BuildState) -> dict[str, catboost.CatBoost]:
    """The models the run holds, by group."""
    models = {CONTROL: state.model, TEST: state.test_model}
    return {name: model for name, model in models.items() if model is not None}


def embedding_label(info: EmbeddingInfo) -> str:
    """The embedding method and dimension, e.g. ``tfidf-svd-64``."""
    return f"{info.method}-{info.dim}"


def run_steps(state: BuildState, steps: Sequence[tuple[str, Step]]) -> BuildState:
    """Run named steps in order, logging rows, seconds, RSS and the process's peak RSS so far after each."""
    for name, step in steps:
        started = time.perf_counter()
        rows = step(state)
        seconds = time.perf_counter() - started
        release_free_heap()
        log.info("step %s: rows=%d seconds=%.2f rss_mb=%.0f peak_mb=%.0f", name, rows, seconds, rss_mb(), peak_rss_mb())
    return state


def data_end(engine: Engine) -> datetime:
    """The default as_of: midnight after the feed's last row.

    Raises:
        SourceUnavailableError: The feed is empty.
    """
    with engine.connect() as conn:
        last = conn.execute(sa.text(f'SELECT max("{Col.TIMESTAMP}") FROM {Table.FEED}')).scalar()
    if last is None:
        raise SourceUnavailableError(f"{Table.FEED} is empty: load data or run `postrec seed` first")
    return datetime.combine(last.date(), datetime.min.time()) + timedelta(days=1)


def step_validate(state: BuildState) -> int:
    """Check the source before reading it; raises on the first problem."""
    validate_source(state.engine)
    state.as_of = state.options.as_of or data_end(state.engine)
    state.version = new_version_id(state.as_of)
    return 0


def step_extract(state: BuildState) -> int:
    """Users, posts, and every like before as_of (for the liked sets and what scoring leaves out)."""
    state.users = load_users(state.engine)
    state.posts = load_posts(state.engine)
    likes = load_feed(state.engine, end=state.as_of, action=Action.LIKE)
    state.likes = likes.select(Col.TIMESTAMP, Col.USER_ID, Col.POST_ID)
    return state.users.height + state.posts.height + state.likes.height


def _likes_before(state: BuildState, cutoff: datetime) -> pl.DataFrame:
    return state.likes.filter(pl.col(Col.TIMESTAMP) < cutoff).select(Col.USER_ID, Col.POST_ID)


def _feature_sets(state: BuildState, cutoffs: dict[str, datetime]) -> int:
    assert state.encoders is not None  # noqa: S101 - set by the step before
    text = text_stats(state.posts)
    counts: list[FeedCounts] = load_feed_counts(state.engine, list(cutoffs.values()))
    user_ids, post_ids = sorted_ids(state.users, Col.USER_ID), sorted_ids(state.posts, Col.POST_ID)
    viewed = load_viewed(state.engine, user_ids, post_ids, list(cutoffs.values()))
    for (name, cutoff), count, shown in zip(cutoffs.items(), counts, viewed, strict=True):
        likes = _likes_before(state, cutoff)
        state.features[name] = build_features(state.users, state.posts, text, count, likes, state.encoders, shown)
    return sum(count.user_topics.height for count in counts)


def step_train_features(state: BuildState) -> int:
    """Encoders, then feature sets before the label window, before the validation window and at as_of."""
    params = state.options.params
    state.windows = plan_windows(state.as_of, params.label_days, params.valid_days)
    state.encoders = fit_encoders(state.users, state.posts)
    windows = state.windows
    cutoffs = {"train": windows.label_start, "valid": windows.valid_start, "score": windows.as_of}
    return _feature_sets(state, cutoffs)


def _embedding_features(state: BuildState, params: EmbedParams) -> int:
    embeddings = embed_posts(state.posts, embedding_cache_dir(state.settings.data_dir))
    state.embedding = embeddings.info
    for name, features in state.features.items():
        state.embeddings[name] = build_embedding_features(
            embeddings, state.likes, features.user_ids, features.cutoff, params
        )
    return embeddings.post_ids.size


def step_embeddings(state: BuildState) -> int:
    """Post embeddings and the ``test`` model's features at every cutoff (skipped when no test model is trained)."""
    if TEST not in wanted_models(state):
        return 0
    state.embed_params = EmbedParams(seed=state.options.params.seed)
    return _embedding_features(state, state.embed_params)


def sample_per_mille(views: int, like_rate: float, params: TrainParams) -> int:
    """Thousandths of users to sample so the expected rows stay within ``max_train_rows``."""
    expected_rows = views * (1.0 + like_rate * params.unseen_per_positive)
    if expected_rows <= params.max_train_rows:
        return SAMPLE_BASE
    return max(1, math.floor(SAMPLE_BASE * params.max_train_rows / expected_rows))


def step_samples(state: BuildState) -> int:
    """Training rows of the label window (shown + never-shown), validation rows of the validation window."""
    assert state.windows is not None  # noqa: S101 - set by the step before
    params, windows = state.options.params, state.windows
    views = count_window_views(state.engine, windows.label_start, windows.valid_start)
    per_mille = sample_per_mille(views, EXPECTED_LIKE_RATE, params)
    label_views = load_window_views(state.engine, windows.label_start, windows.valid_start, per_mille, params.seed)
    # Shown before the end of a window = shown before the cutoff of the next feature set.
    seen_by_valid, seen_by_end = state.features["valid"].was_shown, state.features["score"].was_shown
    post_ids = state.features["train"].post_ids
    train = window_samples(label_views, seen_by_valid, post_ids, params.unseen_per_positive, params.seed)
    valid_views = load_window_views(state.engine, windows.valid_start, windows.as_of, per_mille, params.seed)
    valid = window_samples(valid_views, seen_by_end, post_ids, SHOWN_ONLY, params.seed)
    state.train_set = LabelledSet(state.features["train"], train)
    state.valid_set = LabelledSet(state.features["valid"], valid)
    state.sample_rows = {"train_rows": train.height, "valid_rows": valid.height}
    log.info("samples: user_per_mille=%d train_rows=%d valid_rows=%d", per_mille, train.height, valid.height)
    return train.height + valid.height


def with_embeddings(state: BuildState, labelled: LabelledSet, cutoff: str, model: str) -> LabelledSet:
    """The rows as a model reads them: ``test`` adds the embedding features of the same cutoff."""
    return replace(labelled, extra=state.embeddings[cutoff]) if model == TEST else labelled


def step_train(state: BuildState) -> int:
    """Fit CatBoost on the training rows, once per wanted model (the same rows, the same parameters)."""
    assert state.train_set is not None  # noqa: S101 - set by the step before
    for name in wanted_models(state):
        model = fit_model(with_embeddings(state, state.train_set, "train", name), state.options.params)
        if name == TEST:
            state.test_model = model
        else:
            state.model = model
    state.model_version = state.version
    return state.train_set.samples.height


def step_evaluate(state: BuildState) -> int:
    """AUC, logloss and hitrate@5 on the validation window; the test model's under a ``test_`` prefix."""
    assert state.valid_set is not None and state.windows is not None  # noqa: S101 - set by the steps before
    window_likes = state.likes.filter(pl.col(Col.TIMESTAMP) >= state.windows.valid_start)
    for name, model in trained_models(state).items():
        valid = with_embeddings(state, state.valid_set, "valid", name)
        metrics = evaluate(model, valid, window_likes, state.options.params)
        prefix = "test_" if name == TEST else ""
        state.metrics |= {f"{prefix}{metric}": value for metric, value in metrics.items()}
    if state.model is not None:
        state.calibration = calibration(state.model, state.valid_set)
    log.info("validation: %s", " ".join(f"{name}={value:.4f}" for name, value in state.metrics.items()))
    return int(state.metrics.get("valid_rows", state.metrics.get("test_valid_rows", 0)))


def step_release(state: BuildState) -> int:
    """Drop what only training and validation read (their feature sets and rows), so scoring starts lighter."""
    dropped = [name for name in state.features if name != "score"]
    for name in dropped:
        del state.features[name]
        state.embeddings.pop(name, None)
    state.train_set = state.valid_set = None
    gc.collect()
    return len(dropped)


def _row_counts(state: BuildState) -> dict[str, int]:
    return {"users": state.users.height, "posts": state.posts.height, "likes": state.likes.height} | state.sample_rows


def step_save(state: BuildState) -> int:
    """Write the models' artifact under data_dir/models/<version>/."""
    assert state.encoders is not None and state.windows is not None  # noqa: S101 - set by the steps before
    params = state.options.params
    metadata = {
        "as_of": state.as_of.isoformat(),
        "created_at": utc_now(),
        "windows": state.windows.to_dict(),
        "params": {name: getattr(params, name) for name in params.__dataclass_fields__},
        "metrics": state.metrics,
        "rows": _row_counts(state),
        "models": sorted(trained_models(state)),
    }
    if state.embedding is not None:
        metadata["embedding"] = embedding_label(state.embedding)
        metadata["embed_params"] = asdict(state.embed_params)
    models = trained_models(state)
    save_artifact(state.settings.data_dir, state.version, models, state.encoders, metadata)
    return len(models)


def split_users(user_ids: npt.NDArray[np.int32], salt: str, control_percent: int) -> dict[str, npt.NDArray[np.int32]]:
    """The users of each A/B group (see :func:`common.ab.assign_group`), in their given order."""
    groups = np.array([assign_group(user, salt, control_percent) for user in user_ids.tolist()], dtype=object)
    return {name: user_ids[groups == name] for name in (CONTROL, TEST)}


def score_group(state: BuildState, name: str, user_ids: npt.ArrayLike, k: int, show_progress: bool = False) -> TopK:
    """Top k of the users with the model of group ``name`` on the features at as_of.

    Raises:
        MissingArtifactError: The run holds no model of that group.
    """
    models = trained_models(state)
    if name not in models:
        raise MissingArtifactError(f"no {name} model in this run: build with a split that serves {name}")
    extra = state.embeddings.get("score") if name == TEST else None
    threads = state.options.params.threads
    features = state.features["score"]
    return score_users(models[name], features, user_ids, k, threads=threads, show_progress=show_progress, extra=extra)


def step_score(state: BuildState) -> int:
    """Exhaustive top-K of every user at as_of, each user by the model of its A/B group."""
    features, settings = state.features["score"], state.settings
    groups = split_users(features.user_ids, settings.ab_salt, settings.control_percent)
    parts = [score_group(state, name, users, state.options.k, True) for name, users in groups.items() if users.size]
    state.rankings = merge_top(parts) if parts else score_group(state, next(iter(trained_models(state))), [], 1)
    log.info("scored: %s", " ".join(f"{name}_users={users.size}" for name, users in groups.items()))
    return int(state.rankings.user_ids.size * features.post_ids.size)


def models_meta(state: BuildState) -> dict[str, str]:
    """What the version's meta records as its models: the model version of each group, and the embedding method."""
    models: dict[str, str] = {name: state.model_version for name in trained_models(state)}
    if state.embedding is not None and TEST in models:
        models["embedding"] = embedding_label(state.embedding)
    return models


def _release(state: BuildState) -> Release:
    assert state.rankings is not None  # noqa: S101 - set by the step before
    features, settings = state.features["score"], state.settings
    meta = version_meta(
        version=state.version,
        as_of=state.as_of,
        settings=settings,
        models=models_meta(state),
        k=state.options.k,
        users=int((state.rankings.post_ids[:, 0] >= 0).sum()),
        posts=state.posts.height,
        metrics=state.metrics,
    )
    liked = state.likes.select(Col.USER_ID, Col.POST_ID)
    return Release(meta, state.rankings, state.posts, popular_order(features).tolist(), liked)


def step_publish(state: BuildState) -> int:
    """Write the version to Redis, verify it and make it live."""
    if not state.options.publish:
        return 0
    settings = state.settings
    client = redis_client(settings.redis_url, Role.BATCH)
    try:
        release = _release(state)
        state.previous = publish_release(client, KeyLayout(settings.prefix), release, settings.version_grace_seconds)
    finally:
        client.close()
    return release.meta.users


def check_store(settings: Settings) -> None:
    """Fail before hours of work when Redis does not answer.

    Raises:
        StoreUnavailableError: Redis cannot be reached.
    """
    client = redis_client(settings.redis_url, Role.PROBE)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreUnavailableError(f"Redis at {settings.redis_url} is unreachable ({exc}): start it first") from None
    finally:
        client.close()


# Everything up to a trained, evaluated model; the sharded refresh (worker.refresh) runs these, then scores in shards.
TRAIN_STEPS: Final[tuple[tuple[str, Step], ...]] = (
    ("validate", step_validate),
    ("extract", step_extract),
    ("features", step_train_features),
    ("embeddings", step_embeddings),
    ("samples", step_samples),
    ("train", step_train),
    ("evaluate", step_evaluate),
    ("release", step_release),
)

BUILD_STEPS: Final[tuple[tuple[str, Step], ...]] = (
    *TRAIN_STEPS,
    ("save", step_save),
    ("score", step_score),
    ("publish", step_publish),
)


def _run_checked(
    settings: Settings, engine: Engine, options: BuildOptions, steps: Sequence[tuple[str, Step]]
) -> BuildState:
    if options.publish:
        check_store(settings)
    return run_steps(BuildState(settings, engine, options), steps)


def run_build(settings: Settings, engine: Engine, options: BuildOptions) -> BuildState:
    """Validate, extract, build features, train, evaluate, save, score and publish a new version."""
    return _run_checked(settings, engine, options, BUILD_STEPS)


def step_load_model(state: BuildState) -> int:
    """Load the chosen (or latest) artifact; its encoders code this run's features."""
    path = state.options.model_path or latest_artifact_path(state.settings.data_dir)
    artifact: Artifact = load_artifact(path)
    state.model, state.test_model = artifact.models.get(CONTROL), artifact.models.get(TEST)
    state.encoders, state.model_version = artifact.encoders, artifact.version
    state.metrics = dict(artifact.metadata.get("metrics", {}))
    state.embed_params = EmbedParams(**artifact.metadata.get("embed_params", {}))
    return len(artifact.models)


def step_score_features(state: BuildState) -> int:
    """The feature set at as_of only."""
    return _feature_sets(state, {"score": state.as_of})


def step_score_embeddings(state: BuildState) -> int:
    """The embedding features at as_of, when the loaded artifact holds a ``test`` model."""
    if state.test_model is None:
        return 0
    rows = _embedding_features(state, state.embed_params)
    expected = list(state.test_model.feature_names_ or [])[len(FEATURE_NAMES) :]
    if list(state.embeddings["score"].names) != expected:
        raise ArtifactMismatchError(
            f"the test model reads {expected}, this run builds {list(state.embeddings['score'].names)}: "
            "run `postrec build` to train a model for this code"
        )
    return rows


SCORE_STEPS: Final[tuple[tuple[str, Step], ...]] = (
    ("validate", step_validate),
    ("extract", step_extract),
    ("load model", step_load_model),
    ("features", step_score_features),
    ("embeddings", step_score_embeddings),
    ("score", step_score),
    ("publish", step_publish),
)


def run_score(settings: Settings, engine: Engine, options: BuildOptions) -> BuildState:
    """Rescore every user with an existing artifact on fresh features and publish the result."""
    return _run_checked(settings, engine, options, SCORE_STEPS)
