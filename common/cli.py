"""``postrec db init`` and ``postrec services up|down``: the subcommands that need only the contract."""

from __future__ import annotations

import argparse
import logging

from common.settings import Settings

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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the database and embedded-server subcommands."""
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
