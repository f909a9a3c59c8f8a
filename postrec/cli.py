"""The ``postrec`` console script: one parser whose subcommands each package registers for itself.

This is the one module that sees every package (api, worker, batch, common), which is why it lives apart from all of
them. Handlers import lazily, so ``postrec serve`` never loads the batch's heavy dependencies.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from common.errors import PostrecError
from common.logs import configure_logging
from common.settings import load_settings

log = logging.getLogger("postrec")
DESCRIPTION = "Post recommendations: built offline into Redis, served by a sub-millisecond API."


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every package's subcommands."""
    from api.cli import register as register_api
    from batch.cli import register as register_batch
    from common.cli import register as register_common
    from worker.cli import register as register_worker

    parser = argparse.ArgumentParser(prog="postrec", description=DESCRIPTION)
    parser.add_argument("--log-level", default=None, help="logging level (default: POSTREC_LOG_LEVEL or INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (register_common, register_batch, register_api, register_worker):
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
