"""``postrec seed``, ``build``, ``score``, ``rollback``, ``evaluate``."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the batch's subcommands."""
