"""``postrec seed``, ``build``, ``score``, ``rollback``, ``evaluate``."""

from __future__ import annotations

import argparse

from common.settings import Settings


def _cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from batch.seed import seed_database
    from common.db import ensure_database, make_engine

    ensure_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        seed_database(engine, args.scale, args.seed)
    finally:
        engine.dispose()
    return 0


def _register_seed(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seed = commands.add_parser("seed", help="generate the synthetic world and load it into PostgreSQL (replaces)")
    seed.add_argument("--scale", default="small", choices=("tiny", "small", "medium", "full"), help="world size")
    seed.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same data")
    seed.set_defaults(handler=_cmd_seed)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the batch's subcommands."""
    _register_seed(commands)
