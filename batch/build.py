"""``postrec build`` and ``postrec score``: the offline batch as a list of named steps.

build: validate -> extract -> features -> samples -> train -> evaluate -> save -> score -> publish.
score: validate -> extract -> load model -> features -> score -> publish (an existing artifact, fresh features).

Each step logs one line with its rows, seconds and RSS. Nothing reaches Redis before the publish step, so a
failure in any earlier step (PostgreSQL unreachable, invalid data, a crash) leaves what is served untouched.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import catboost
import polars as pl
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.artifacts import Artifact, latest_artifact_path, load_artifact, save_artifact
from batch.extract import load_feed, load_posts, load_users
from batch.features import Encoders, FeatureSet, build_features, fit_encoders, text_stats
from batch.feed_counts import FeedCounts, load_feed_counts
from batch.publish import Release, new_version_id, publish_release, utc_now
from batch.samples import (
    SAMPLE_BASE,
    count_window_views,
    load_seen_pairs,
    load_window_views,
    window_samples,
)
from batch.score import TopK, popular_order, score_users
from batch.train import LabelledSet, TrainParams, Windows, evaluate, fit_model, plan_windows
from batch.validate import validate_source
from common.ab import CONTROL
from common.columns import Action, Col, Table
from common.errors import SourceUnavailableError, StoreUnavailableError
from common.keys import KeyLayout
from common.logs import rss_mb
from common.payloads import VersionMeta
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
    """

    as_of: datetime | None = None
    k: int = 200
    params: TrainParams = field(default_factory=TrainParams)
    model_path: Path | None = None
    publish: bool = True


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
    metrics: dict[str, float] = field(default_factory=dict)
    rankings: TopK | None = None
    previous: str | None = None


Step = Callable[[BuildState], int]


def run_steps(state: BuildState, steps: Sequence[tuple[str, Step]]) -> BuildState:
    """Run named steps in order, logging rows, seconds and RSS of each."""
    for name, step in steps:
        started = time.perf_counter()
        rows = step(state)
        seconds = time.perf_counter() - started
        log.info("step %s: rows=%d seconds=%.2f rss_mb=%.0f", name, rows, seconds, rss_mb())
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
    for (name, cutoff), count in zip(cutoffs.items(), counts, strict=True):
        state.features[name] = build_features(
            state.users, state.posts, text, count, _likes_before(state, cutoff), state.encoders
        )
    return sum(count.user_topics.height for count in counts)


def step_train_features(state: BuildState) -> int:
    """Encoders, then feature sets before the label window, before the validation window and at as_of."""
    params = state.options.params
    state.windows = plan_windows(state.as_of, params.label_days, params.valid_days)
    state.encoders = fit_encoders(state.users, state.posts)
    windows = state.windows
    cutoffs = {"train": windows.label_start, "valid": windows.valid_start, "score": windows.as_of}
    return _feature_sets(state, cutoffs)


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
    seen = load_seen_pairs(state.engine, windows.valid_start, per_mille, params.seed)
    post_ids = state.features["train"].post_ids
    train = window_samples(label_views, seen, post_ids, params.unseen_per_positive, params.seed)
    valid_views = load_window_views(state.engine, windows.valid_start, windows.as_of, per_mille, params.seed)
    valid = window_samples(valid_views, seen.clear(), post_ids, SHOWN_ONLY, params.seed)
    state.train_set = LabelledSet(state.features["train"], train)
    state.valid_set = LabelledSet(state.features["valid"], valid)
    log.info("samples: user_per_mille=%d train_rows=%d valid_rows=%d", per_mille, train.height, valid.height)
    return train.height + valid.height


def step_train(state: BuildState) -> int:
    """Fit CatBoost on the training rows."""
    assert state.train_set is not None  # noqa: S101 - set by the step before
    state.model = fit_model(state.train_set, state.options.params)
    state.model_version = state.version
    return state.train_set.samples.height


def step_evaluate(state: BuildState) -> int:
    """AUC, logloss and hitrate@5 on the validation window."""
    assert state.model is not None and state.valid_set is not None and state.windows is not None  # noqa: S101
    window_likes = state.likes.filter(pl.col(Col.TIMESTAMP) >= state.windows.valid_start)
    state.metrics = evaluate(state.model, state.valid_set, window_likes, state.options.params)
    log.info("validation: %s", " ".join(f"{name}={value:.4f}" for name, value in state.metrics.items()))
    return int(state.metrics.get("valid_rows", 0))


def _row_counts(state: BuildState) -> dict[str, int]:
    counts = {"users": state.users.height, "posts": state.posts.height, "likes": state.likes.height}
    if state.train_set is not None and state.valid_set is not None:
        counts |= {"train_rows": state.train_set.samples.height, "valid_rows": state.valid_set.samples.height}
    return counts


def step_save(state: BuildState) -> int:
    """Write the model artifact under data_dir/models/<version>/."""
    assert state.model is not None and state.encoders is not None and state.windows is not None  # noqa: S101
    params = state.options.params
    metadata = {
        "as_of": state.as_of.isoformat(),
        "created_at": utc_now(),
        "windows": state.windows.to_dict(),
        "params": {name: getattr(params, name) for name in params.__dataclass_fields__},
        "metrics": state.metrics,
        "rows": _row_counts(state),
    }
    save_artifact(state.settings.data_dir, state.version, state.model, state.encoders, metadata)
    return 1


def step_score(state: BuildState) -> int:
    """Exhaustive top-K of every user at as_of."""
    assert state.model is not None  # noqa: S101 - set by the step before
    features = state.features["score"]
    state.rankings = score_users(
        state.model,
        features,
        features.user_ids,
        state.options.k,
        threads=state.options.params.threads,
        show_progress=True,
    )
    return int(state.rankings.user_ids.size * features.post_ids.size)


def _release(state: BuildState) -> Release:
    assert state.rankings is not None  # noqa: S101 - set by the step before
    features, settings = state.features["score"], state.settings
    meta = VersionMeta(
        version=state.version,
        as_of=state.as_of.isoformat(),
        created_at=utc_now(),
        models=json.dumps({CONTROL: state.model_version}),
        salt=settings.ab_salt,
        control_percent=settings.control_percent,
        k=state.options.k,
        users=int((state.rankings.post_ids[:, 0] >= 0).sum()),
        posts=state.posts.height,
        metrics=json.dumps(state.metrics),
    )
    liked = state.likes.select(Col.USER_ID, Col.POST_ID)
    return Release(meta, state.rankings, state.posts, popular_order(features).tolist(), liked)


def step_publish(state: BuildState) -> int:
    """Write the version to Redis, verify it and make it live."""
    if not state.options.publish:
        return 0
    settings = state.settings
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=60)
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
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreUnavailableError(f"Redis at {settings.redis_url} is unreachable ({exc}): start it first") from None
    finally:
        client.close()


BUILD_STEPS: Final[tuple[tuple[str, Step], ...]] = (
    ("validate", step_validate),
    ("extract", step_extract),
    ("features", step_train_features),
    ("samples", step_samples),
    ("train", step_train),
    ("evaluate", step_evaluate),
    ("save", step_save),
    ("score", step_score),
    ("publish", step_publish),
)


def run_build(settings: Settings, engine: Engine, options: BuildOptions) -> BuildState:
    """Validate, extract, build features, train, evaluate, save, score and publish a new version."""
    if options.publish:
        check_store(settings)
    return run_steps(BuildState(settings, engine, options), BUILD_STEPS)


def step_load_model(state: BuildState) -> int:
    """Load the chosen (or latest) artifact; its encoders code this run's features."""
    path = state.options.model_path or latest_artifact_path(state.settings.data_dir)
    artifact: Artifact = load_artifact(path)
    state.model, state.encoders, state.model_version = artifact.model, artifact.encoders, artifact.version
    state.metrics = dict(artifact.metadata.get("metrics", {}))
    return 1


def step_score_features(state: BuildState) -> int:
    """The feature set at as_of only."""
    return _feature_sets(state, {"score": state.as_of})


SCORE_STEPS: Final[tuple[tuple[str, Step], ...]] = (
    ("validate", step_validate),
    ("extract", step_extract),
    ("load model", step_load_model),
    ("features", step_score_features),
    ("score", step_score),
    ("publish", step_publish),
)


def run_score(settings: Settings, engine: Engine, options: BuildOptions) -> BuildState:
    """Rescore every user with an existing artifact on fresh features and publish the result."""
    if options.publish:
        check_store(settings)
    return run_steps(BuildState(settings, engine, options), SCORE_STEPS)
