"""One frozen settings object per process, read from ``POSTREC_*`` environment variables.

Only entry points (the CLI, the app factory, worker jobs) call :func:`load_settings`; everything below them takes
plain arguments. Each field below is documented in the README's configuration table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from common.errors import ConfigError
from common.redis_clients import is_cluster_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postrec"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENV_PREFIX = "POSTREC_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide configuration.

    Attributes:
        database_url: SQLAlchemy URL of the PostgreSQL source of truth (``postgresql://...``).
        redis_url: URL of the serving store (``redis://`` or ``rediss://user:password@host``), or of a Redis Cluster
            (``redis+cluster://host:port[,host:port...]``, ``rediss+cluster://`` with TLS), which selects the cluster
            client everywhere.
        queue_url: URL of the plain Redis holding the workers' RQ queues (RQ cannot use a cluster). Empty: the
            serving store's URL; required when ``redis_url`` is a cluster.
        prefix: Namespace of every Redis key postrec writes, so several deployments can share one Redis.
        k: Length of each user's precomputed ranked list; the API's ``limit`` is at most this.
        ab_salt: Salt of the deterministic A/B split; changing it reshuffles users between groups.
        control_percent: Share of users (0..100) that get the ``control`` model.
        data_dir: Where embedded servers, model artifacts and caches live on this machine.
        embedding_cache: Folder of the post vectors' cache; None = ``<data_dir>/embeddings``. A vector depends on
            its text alone, so deployments, evaluations and benchmarks on one machine may share one folder and embed
            each text once.
        log_level: stdlib logging level name for entry points.
        version_grace_seconds: How long a superseded version stays in Redis before it is deleted.
        served_stream_maxlen: Approximate cap on the ``served`` stream's length.
        api_redis_timeout_ms: How long the API waits for Redis (to connect, and for each reply) before answering
            503, so a dead or hung Redis never holds a request longer.
        seed: Random seed for training and any sampling, so a build is reproducible.
        likes_sync_interval_seconds: How often the scheduler enqueues the likes sync.
        likes_sync_overlap_seconds: How far before its watermark a likes sync reads again, for likes committed
            late with an older timestamp (re-reading is harmless: sets add nothing twice).
        refresh_cron: Cron expression (local time of the scheduler) of the full refresh: extract, train, score.
        refresh_timeout_seconds: Time limit of one refresh job (extract and train) and of one scoring shard.
        shard_users: Users per scoring shard of a refresh; each shard is one job any worker can run.
        job_retries: How many times a failed worker job is tried again before it counts as failed for good.
        job_retry_interval_seconds: Wait before each retry of a failed worker job.
        allow_worse: Publish a build or refresh even when its validation ranks the model below the best baseline
            beyond noise (``postrec build --allow-worse`` for one build; this setting for the workers' refreshes).
        horizon_hours: How long after a build its lists are used, in hours. 0: each user's next visits, as the
            per-user hold-out judges them; more (a feed refreshed weekly, say), and training rows read the user's
            history up to that long (at most a week) before their like (``TrainParams.history_lag``).
    """

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    queue_url: str = ""
    prefix: str = "postrec"
    k: int = 200
    ab_salt: str = "postrec-ab-1"
    control_percent: int = 50
    data_dir: Path = Path(".data")
    embedding_cache: Path | None = None
    log_level: str = "INFO"
    version_grace_seconds: int = 3600
    served_stream_maxlen: int = 100_000
    api_redis_timeout_ms: int = 50
    seed: int = 42
    likes_sync_interval_seconds: int = 60
    likes_sync_overlap_seconds: int = 60
    refresh_cron: str = "30 2 * * *"
    refresh_timeout_seconds: int = 4 * 3600
    shard_users: int = 10_000
    job_retries: int = 2
    job_retry_interval_seconds: int = 30
    allow_worse: bool = False
    horizon_hours: int = 0

    def __post_init__(self) -> None:
        # Frozen: the one normalisation goes through object.__setattr__, before anything reads the field.
        object.__setattr__(self, "database_url", normalise_database_url(self.database_url))
        _require(self.database_url.startswith("postgresql"), "POSTREC_DATABASE_URL must start with postgresql://")
        _require(
            self.log_level.upper() in LOG_LEVELS,
            f"log level {self.log_level!r} (POSTREC_LOG_LEVEL or --log-level) is not one of {', '.join(LOG_LEVELS)}",
        )
        _require(self.redis_url.startswith(REDIS_SCHEMES), "POSTREC_REDIS_URL must be redis:// or redis+cluster://")
        if not self.queue_url and not is_cluster_url(self.redis_url):
            object.__setattr__(self, "queue_url", self.redis_url)
        _require(
            not self.queue_url or self.queue_url.startswith(REDIS_SCHEMES[:3]),
            "POSTREC_QUEUE_URL must be a plain Redis (redis://, rediss:// or unix://): RQ cannot use a cluster",
        )
        _require(1 <= self.k <= 10_000, f"POSTREC_K must be in 1..10000, got {self.k}")
        _require(0 <= self.control_percent <= 100, "POSTREC_CONTROL_PERCENT must be in 0..100")
        _require(self.horizon_hours >= 0, f"POSTREC_HORIZON_HOURS must be >= 0, got {self.horizon_hours}")
        _require(bool(self.prefix) and ":" not in self.prefix, "POSTREC_PREFIX must be non-empty without ':'")


def queue_url(settings: Settings) -> str:
    """The URL of the Redis that holds the RQ queues.

    Raises:
        ConfigError: The serving store is a cluster and ``POSTREC_QUEUE_URL`` is not set.
    """
    if not settings.queue_url:
        raise ConfigError(
            "POSTREC_REDIS_URL is a Redis Cluster, which RQ cannot use: set POSTREC_QUEUE_URL to a plain Redis "
            "(redis://host:port/db) for the workers' queues"
        )
    return settings.queue_url


def normalise_database_url(url: str) -> str:
    """``postgres://`` (Heroku's and libpq's spelling, which SQLAlchemy refuses) becomes ``postgresql://``."""
    scheme, sep, rest = url.partition("://")
    if sep and (scheme == "postgres" or scheme.startswith("postgres+")):
        return "postgresql" + scheme[len("postgres") :] + sep + rest
    return url


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from the environment (``POSTREC_<FIELD>``), then apply explicit overrides.

    Args:
        environ: Variables to read; the process environment when omitted.
        **overrides: Field values that win over the environment (for example from CLI flags).

    Raises:
        ConfigError: A variable does not parse as its field's type or is out of range.
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = env.get(ENV_PREFIX + field.name.upper())
        if raw is not None and raw != "":
            values[field.name] = _parse(field.name, str(field.type), raw)
    values.update({name: value for name, value in overrides.items() if value is not None})
    return Settings(**values)  # type: ignore[arg-type]


def _parse(name: str, type_name: str, raw: str) -> object:
    try:
        if type_name == "int":
            return int(raw)
        if type_name in ("Path", "Path | None"):
            return Path(raw)
        if type_name == "bool":
            return _parse_bool(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {type_name}") from None
    return raw


def _parse_bool(raw: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if raw.strip().lower() not in words:
        raise ValueError(raw)
    return words[raw.strip().lower()]
