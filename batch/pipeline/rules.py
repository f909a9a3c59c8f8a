"""The rules the source data must follow, defined once for the build (SQL over PostgreSQL) and for ``postrec load``
(polars over each chunk of a file, so a message can name the file's row).

Each rule names its table, the column it blames, the problem and its severity: ``REFUSE`` stops the batch (or the
load) with every problem listed; ``WARN`` counts the rows, logs them and handles them as the rule's ``handling``
says. The table of every rule and its handling is in docs/operations.md ("Data rules").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

import polars as pl

from common.columns import Action, Col, Table

# Ages outside this range are data errors (-5, 500); the real data holds 14..95. Such an age is read as missing.
AGE_MIN: Final = 1
AGE_MAX: Final = 120


class Severity(StrEnum):
    """What a broken rule does to the batch."""

    REFUSE = "refuse"
    WARN = "warn"


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What row rules compare against besides the row itself.

    Attributes:
        user_ids: Every user id of ``user_data`` (the feed's user ids must be among them).
        post_ids: Every post id of ``post_text_df``.
        cutoff: Feed rows at or after it are ignored (the build's as_of; now, for a load).
    """

    user_ids: pl.Series
    post_ids: pl.Series
    cutoff: datetime


@dataclass(frozen=True, slots=True)
class RowRule:
    """A rule that one row breaks on its own (or with the row's user and post looked up).

    Attributes:
        table: The table the rule applies to.
        column: The column blamed in messages.
        problem: What is wrong, in words.
        severity: REFUSE or WARN.
        sql: A condition over alias ``t`` (the feed also has ``u`` and ``p``, its user and post LEFT JOINed by key,
            and the parameter ``:cutoff``) that is TRUE on offending rows.
        check: The same condition as a polars expression over a chunk of the table's typed rows.
        handling: For WARN rules: what the batch does with the offending rows.
    """

    table: str
    column: str
    problem: str
    severity: Severity
    sql: str
    check: Callable[[RuleContext], pl.Expr]
    handling: str = ""


@dataclass(frozen=True, slots=True)
class KeyRule:
    """A table's key must be unique. Checked in SQL by the build, and by ``postrec load`` as the ids stream in."""

    table: str
    column: str
    problem: str = "duplicate key"
    severity: Severity = Severity.REFUSE


def _null(column: str) -> Callable[[RuleContext], pl.Expr]:
    return lambda _: pl.col(column).is_null()


def _age_impossible(_: RuleContext) -> pl.Expr:
    return ~pl.col(Col.AGE).is_between(AGE_MIN, AGE_MAX)


def _action_unknown(_: RuleContext) -> pl.Expr:
    return pl.col(Col.ACTION).is_null() | ~pl.col(Col.ACTION).is_in(list(Action.ALL))


def _target_outside(_: RuleContext) -> pl.Expr:
    return ~pl.col(Col.TARGET).is_in([0, 1])


def _view_without_target(_: RuleContext) -> pl.Expr:
    return (pl.col(Col.ACTION) == Action.VIEW) & pl.col(Col.TARGET).is_null()


def _user_missing(context: RuleContext) -> pl.Expr:
    return pl.col(Col.USER_ID).is_not_null() & ~pl.col(Col.USER_ID).is_in(context.user_ids.implode())


def _post_missing(context: RuleContext) -> pl.Expr:
    return pl.col(Col.POST_ID).is_not_null() & ~pl.col(Col.POST_ID).is_in(context.post_ids.implode())


def _after_cutoff(context: RuleContext) -> pl.Expr:
    return pl.col(Col.TIMESTAMP) >= context.cutoff


_ACTIONS_SQL = ", ".join(f"'{action}'" for action in Action.ALL)

ROW_RULES: Final[tuple[RowRule, ...]] = (
    RowRule(Table.USERS, Col.USER_ID, "NULL key", Severity.REFUSE, f"t.{Col.USER_ID} IS NULL", _null(Col.USER_ID)),
    RowRule(
        Table.USERS,
        Col.AGE,
        f"impossible age (outside {AGE_MIN}..{AGE_MAX})",
        Severity.WARN,
        f"t.{Col.AGE} NOT BETWEEN {AGE_MIN} AND {AGE_MAX}",
        _age_impossible,
        "read as a missing age",
    ),
    RowRule(Table.POSTS, Col.POST_ID, "NULL key", Severity.REFUSE, f"t.{Col.POST_ID} IS NULL", _null(Col.POST_ID)),
    RowRule(
        Table.POSTS,
        Col.TEXT,
        "NULL text",
        Severity.WARN,
        f"t.{Col.TEXT} IS NULL",
        _null(Col.TEXT),
        'read as an empty text (served as "")',
    ),
    RowRule(
        Table.POSTS,
        Col.TOPIC,
        "NULL topic",
        Severity.WARN,
        f"t.{Col.TOPIC} IS NULL",
        _null(Col.TOPIC),
        'read as topic "" (the models\' unknown topic; served as "")',
    ),
    RowRule(Table.FEED, Col.USER_ID, "NULL key", Severity.REFUSE, f"t.{Col.USER_ID} IS NULL", _null(Col.USER_ID)),
    RowRule(Table.FEED, Col.POST_ID, "NULL key", Severity.REFUSE, f"t.{Col.POST_ID} IS NULL", _null(Col.POST_ID)),
    RowRule(
        Table.FEED,
        Col.TIMESTAMP,
        "NULL timestamp",
        Severity.REFUSE,
        f't."{Col.TIMESTAMP}" IS NULL',
        _null(Col.TIMESTAMP),
    ),
    RowRule(
        Table.FEED,
        Col.ACTION,
        f"unknown action (expected {' or '.join(Action.ALL)})",
        Severity.REFUSE,
        f"t.{Col.ACTION} IS NULL OR t.{Col.ACTION} NOT IN ({_ACTIONS_SQL})",
        _action_unknown,
    ),
    RowRule(
        Table.FEED,
        Col.TARGET,
        "target outside 0, 1 and NULL",
        Severity.REFUSE,
        f"t.{Col.TARGET} NOT IN (0, 1)",
        _target_outside,
    ),
    RowRule(
        Table.FEED,
        Col.TARGET,
        "view with a NULL target (a view's target is 0 or 1; NULL is accepted on likes only)",
        Severity.REFUSE,
        f"t.{Col.ACTION} = '{Action.VIEW}' AND t.{Col.TARGET} IS NULL",
        _view_without_target,
    ),
    RowRule(
        Table.FEED,
        Col.USER_ID,
        f"user missing from {Table.USERS}",
        Severity.REFUSE,
        f"u.{Col.USER_ID} IS NULL AND t.{Col.USER_ID} IS NOT NULL",
        _user_missing,
    ),
    RowRule(
        Table.FEED,
        Col.POST_ID,
        f"post missing from {Table.POSTS}",
        Severity.REFUSE,
        f"p.{Col.POST_ID} IS NULL AND t.{Col.POST_ID} IS NOT NULL",
        _post_missing,
    ),
    RowRule(
        Table.FEED,
        Col.TIMESTAMP,
        "dated at or after the cutoff (in the future, or after --as-of)",
        Severity.WARN,
        f't."{Col.TIMESTAMP}" >= :cutoff',
        _after_cutoff,
        "ignored by the build",
    ),
)

KEY_RULES: Final[tuple[KeyRule, ...]] = (KeyRule(Table.USERS, Col.USER_ID), KeyRule(Table.POSTS, Col.POST_ID))


@dataclass(frozen=True, slots=True)
class PairRule:
    """A rule over all the feed rows of one (user, post) pair; checked in SQL only, after the rows are stored."""

    name: str
    column: str
    problem: str
    unit: str
    handling: str
    severity: Severity = Severity.WARN


DUPLICATE_ROWS: Final = PairRule(
    "duplicates",
    Col.TIMESTAMP,
    "exact duplicate rows (every column equal)",
    "extra rows",
    "kept: each weighs as a repeat view (or like) of the post does; docs/operations.md shows how to delete them",
)
LIKE_WITHOUT_VIEW: Final = PairRule(
    "likes_without_view",
    Col.ACTION,
    "likes with no view of the post by the user at or before them",
    "(user, post) pairs",
    "kept: the like counts in the liked set and the like counts; it labels no training row",
)
PAIR_RULES: Final[tuple[PairRule, ...]] = (DUPLICATE_ROWS, LIKE_WITHOUT_VIEW)


def rules_of(table: str) -> tuple[RowRule, ...]:
    """The row rules of one table, in their declared order."""
    return tuple(rule for rule in ROW_RULES if rule.table == table)
