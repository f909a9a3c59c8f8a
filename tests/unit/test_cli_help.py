"""`postrec --help` and every command's help read as user help: what the command does, in plain text."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from postrec.cli import build_parser

# Marks of developer docstrings: reST roles and literals, backticks, Google-style sections.
DOCSTRING_MARKS = re.compile(r"`|:(func|mod|class|data|meth):|^\s*(Args|Returns|Raises|Attributes):", re.MULTILINE)


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


COMMANDS = list(commands(build_parser()))


def help_of(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*path, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "postrec")
def test_help_is_plain_user_text_that_says_what_the_command_does(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(path, capsys)
    assert not DOCSTRING_MARKS.search(text), text
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: {' '.join(('postrec', *path))}")
    assert not description.lstrip().startswith(("options:", "positional arguments:")), f"no description:\n{text}"


def test_top_level_help_shows_the_first_run(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of((), capsys)
    for step in ("postrec db init", "postrec seed", "postrec build", "postrec serve"):
        assert step in text
