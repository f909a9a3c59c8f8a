"""What ``postrec load`` found wrong in the files: per file, column and problem, a count and the first row, with the
row's values as the file has them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from batch.ingest.files import ROW
from batch.pipeline.rules import Severity
from batch.pipeline.validate import shown


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One kind of bad value or broken rule in one file.

    Attributes:
        file: The file name.
        column: The column blamed.
        problem: What is wrong.
        severity: REFUSE stops the load; WARN rows are loaded and handled by the build.
        count: How many rows.
        first_row: The number of the first such row in the file (the first data row is 1).
        example: That row's values, as read from the file.
        handling: For WARN problems: what the build does with the rows.
    """

    file: str
    column: str
    problem: str
    severity: Severity
    count: int
    first_row: int
    example: dict[str, Any]
    handling: str = ""

    def line(self) -> str:
        """One line naming file, row, column, problem, count and the row's values."""
        text = (
            f"{self.file} row {self.first_row} column {self.column}: {self.problem} "
            f"({self.count} row{'s' if self.count != 1 else ''}; first row {self.example})"
        )
        return f"{text} -> {self.handling}" if self.handling else text


class ProblemLog:
    """Counts problems chunk by chunk, keeping the first row of each."""

    def __init__(self) -> None:
        """Start with no problem."""
        self._found: dict[tuple[str, str, str], FileProblem] = {}

    def add(self, file: str, raw: pl.DataFrame, mask: pl.Series, rule: tuple[str, str, Severity, str]) -> None:
        """Count the rows of ``raw`` (a chunk as read, with its row numbers) where ``mask`` is True.

        Args:
            file: The file name.
            raw: The chunk's rows as read, with the row-number column.
            mask: True on the offending rows.
            rule: (column, problem, severity, handling).
        """
        count = int(mask.sum())
        if not count:
            return
        column, problem, severity, handling = rule
        key = (file, column, problem)
        if key in self._found:
            self._found[key] = replace(self._found[key], count=self._found[key].count + count)
            return
        first = raw.filter(mask).row(0, named=True)
        example = {name: shown(value) for name, value in first.items() if name != ROW}
        self._found[key] = FileProblem(file, column, problem, severity, count, int(first[ROW]), example, handling)

    @property
    def refused(self) -> tuple[FileProblem, ...]:
        """The problems that stop the load, file by file (in reading order), then by first row."""
        return self._ordered(Severity.REFUSE)

    @property
    def warned(self) -> tuple[FileProblem, ...]:
        """The problems that only warn, in the same order."""
        return self._ordered(Severity.WARN)

    def _ordered(self, severity: Severity) -> tuple[FileProblem, ...]:
        files = list(dict.fromkeys(problem.file for problem in self._found.values()))
        chosen = [problem for problem in self._found.values() if problem.severity is severity]
        return tuple(sorted(chosen, key=lambda problem: (files.index(problem.file), problem.first_row)))
