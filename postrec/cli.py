"""The ``postrec`` console script: one parser whose subcommands each package registers for itself.

This is the one module that sees every package (api, worker, batch, common), which is why it lives apart from all of
them. Handlers import lazily, so ``postrec serve`` never loads the batch's heavy dependencies.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from common.allocator import return_freed_memory_at_once
from common.errors import PostrecError
from common.logs import configure_logging
from common.settings import Settings, load_settings

log = logging.getLogger("postrec")
DESCRIPTION = "Post recommendations: built offline into Redis, served by a sub-millisecond API."
EPILOG = """first run (PostgreSQL and Redis from POSTREC_DATABASE_URL and POSTREC_REDIS_URL):
  postrec services up          start embedded PostgreSQL and Redis where none answers
  postrec db init              create the source tables
  postrec seed --scale small   generate a synthetic world (or: postrec load DIR)
  postrec build                train, score every user, publish to Redis
  postrec serve --port 8000    serve GET /post/recommendations/?id=200

'postrec COMMAND --help' describes a command; README.md and docs/operations.md have the rest."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every package's subcommands."""
    from api.cli import register as register_api
    from batch.cli import register as register_batch
    from common.cli import register as register_common
    from worker.cli import register as register_worker

    parser = argparse.ArgumentParser(
        prog="postrec", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", default=None, help="logging level (default: POSTREC_LOG_LEVEL or INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (register_common, register_batch, register_api, register_worker):
        register(commands)
    describe_commands(commands)
    return parser


def describe_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Give each command without a description its one-line help, so ``postrec COMMAND --help`` says what it does."""
    for choice in commands._choices_actions:
        parser = commands.choices[choice.dest]
        if parser.description is None and choice.help:
            parser.description = choice.help[0].upper() + choice.help[1:] + "."
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                describe_commands(action)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``postrec`` console script."""
    return_freed_memory_at_once()  # before the parser's imports load polars
    args = build_parser().parse_args(argv)
    # Configured before the settings are read, so that a bad setting is reported like any other error.
    configure_logging()
    settings: Settings | None = None
    try:
        settings = load_settings(log_level=args.log_level)
        configure_logging(settings.log_level)
        return int(args.handler(settings, args))
    except PostrecError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:
        # The top of the process: a lost PostgreSQL or Redis connection anywhere becomes one line, never a traceback.
        message = _database_failure(exc) or _store_failure(exc, settings)
        if message is None:
            raise
        log.error("%s", message)
        return 2


def _database_failure(exc: Exception) -> str | None:
    """A message for a PostgreSQL error that no step turned into a :class:`PostrecError`, else None."""
    from common.db import describe_database_error

    return describe_database_error(exc)


def _store_failure(exc: Exception, settings: Settings | None) -> str | None:
    """A message for a Redis connection error that no step turned into a :class:`PostrecError`, else None."""
    import redis

    from common.urls import mask_url

    if settings is None or not isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return None
    return f"Redis at {mask_url(settings.redis_url)} is unreachable ({exc}): start it or check POSTREC_REDIS_URL"
