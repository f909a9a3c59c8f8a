"""``postrec worker``, ``refresh``, ``sync-likes``."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the worker's subcommands."""
