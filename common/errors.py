"""The error hierarchy shared by batch, worker and API. Messages say what to do next."""

from __future__ import annotations


class PostrecError(Exception):
    """Base of every error postrec raises on purpose; its message is safe to show to a user."""


class ConfigError(PostrecError):
    """A setting is missing or malformed."""


class DataValidationError(PostrecError):
    """Source data in PostgreSQL does not match the expected schema or contents."""


class ServiceStartError(PostrecError):
    """An embedded PostgreSQL or Redis server could not be started; the message carries the end of its log."""


class SourceUnavailableError(PostrecError):
    """PostgreSQL cannot be reached."""


class StoreUnavailableError(PostrecError):
    """Redis cannot be reached."""


class NoPublishedVersionError(PostrecError):
    """Nothing has been published to Redis yet."""

    def __init__(self, message: str = "no published version: run `postrec build`") -> None:
        super().__init__(message)


class UnknownUserError(PostrecError):
    """The user id is not in the published version's fixed user set."""


class ArtifactMismatchError(PostrecError):
    """A saved model artifact does not fit the running code (feature list or format changed)."""


class PublishError(PostrecError):
    """A version could not be written or verified; the live version was left as it was."""


class WorseThanBaselineError(PostrecError):
    """The build's validation ranks a model below the best seen-aware baseline beyond noise; nothing was published."""


class WorkerJobError(PostrecError):
    """A worker job failed for good or did not finish in time; ``rq info`` and its failed registry say why."""
