"""The ``postrec`` console script. Each package registers its own subcommands; handlers import lazily so that
``postrec serve`` never loads the batch's heavy dependencies."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from common.errors import PostrecError
from common.logs import configure_logging
from common.settings import Settings, load_settings

log = logging.getLogger("postrec")


def _cmd_db_init(settings: Settings, _args: argparse.Namespace) -> int:
    from common.db import ensure_database, init_schema, make_engine

    if ensure_database(settings.database_url):
        log.info("created database %s", settings.database_url.rsplit("/", 1)[-1])
    engine = make_engine(settings.database_url)
    try:
        init_schema(engine)
    finally:
        engine.dispose()
    return 0


def _cmd_services_up(settings: Settings, _args: argparse.Namespace) -> int:
    from common.services import ensure_services

    started = ensure_services(settings.database_url, settings.redis_url, settings.data_dir)
    log.info("services answering; started now: %s", ", ".join(started) or "none")
    return 0


def _cmd_services_down(settings: Settings, _args: argparse.Namespace) -> int:
    from common.services import stop_services

    stopped = stop_services(settings.data_dir)
    log.info("stopped: %s", ", ".join(stopped) or "nothing (no embedded server was running)")
    return 0


def _register_common(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="PostgreSQL schema management").add_subparsers(dest="db_command", required=True)
    db.add_parser("init", help="create the database, tables and indexes (idempotent)").set_defaults(
        handler=_cmd_db_init
    )
    services = commands.add_parser("services", help="the embedded PostgreSQL and Redis").add_subparsers(
        dest="services_command", required=True
    )
    services.add_parser("up", help="start embedded servers where nothing answers").set_defaults(
        handler=_cmd_services_up
    )
    services.add_parser("down", help="stop the embedded servers started under the data dir").set_defaults(
        handler=_cmd_services_down
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every package's subcommands."""
    from api.cli import register as register_api
    from batch.cli import register as register_batch
    from worker.cli import register as register_worker

    parser = argparse.ArgumentParser(prog="postrec", description=__doc__)
    parser.add_argument("--log-level", default=None, help="logging level (default: POSTREC_LOG_LEVEL or INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (_register_common, register_batch, register_api, register_worker):
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``postrec`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(args.log_level or settings.log_level)
        return int(args.handler(settings, args))
    except PostrecError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
