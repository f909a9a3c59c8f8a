"""The world's truth in PostgreSQL: tables ``world_params``, ``world_user_truth``, ``world_post_truth``.

They are replaced together with the source tables by each ``postrec seed``; :func:`load_truth` reads them back
for the oracle. Floats are stored as double precision so the oracle sees exactly what the generator used.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import IO, Any, Final, Protocol

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.world.dist import FloatArray
from batch.world.truth import WorldParams, WorldTruth
from common.errors import DataValidationError

PARAMS_TABLE: Final = "world_params"
USER_TRUTH_TABLE: Final = "world_user_truth"
POST_TRUTH_TABLE: Final = "world_post_truth"

TRUTH_DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS {PARAMS_TABLE} (params jsonb NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS {USER_TRUTH_TABLE} (
        user_id integer PRIMARY KEY, draws double precision, bias double precision,
        topic_taste double precision[], group_taste double precision[], interest double precision[],
        active_days integer[], day_weights double precision[])""",
    f"""CREATE TABLE IF NOT EXISTS {POST_TRUTH_TABLE} (
        post_id integer PRIMARY KEY, topic integer, subtopic integer, group_id integer, quality double precision,
        popularity double precision, release_day double precision, trend_days double precision, shown boolean)""",
)


class CopyCursor(Protocol):
    """The part of a psycopg2 cursor that bulk loading uses."""

    def execute(self, query: str, variables: Sequence[object] | None = None) -> object:
        """Run one statement."""

    def copy_expert(self, sql: str, file: IO[str] | IO[bytes]) -> object:
        """Run ``COPY ... FROM STDIN`` reading from ``file``."""


_USERS_PER_COPY = 10_000
_USER_COLUMNS = "user_id, draws, bias, topic_taste, group_taste, interest, active_days, day_weights"
_POST_COLUMNS = "post_id, topic, subtopic, group_id, quality, popularity, release_day, trend_days, shown"


def save_truth(cursor: CopyCursor, truth: WorldTruth) -> None:
    """Replace the truth tables' contents inside the caller's transaction (``cursor`` is a psycopg2 cursor)."""
    # Dropped and recreated rather than truncated, so a truth saved by an older generator version never clashes.
    cursor.execute(f"DROP TABLE IF EXISTS {PARAMS_TABLE}, {USER_TRUTH_TABLE}, {POST_TRUTH_TABLE}")
    for statement in TRUTH_DDL:
        cursor.execute(statement)
    cursor.execute(f"INSERT INTO {PARAMS_TABLE} (params) VALUES (%s)", (truth.params.to_json(),))
    # In slices of users: the text form of the taste arrays is ten times their size in memory.
    for start in range(0, len(truth.user_id), _USERS_PER_COPY):
        rows = slice(start, start + _USERS_PER_COPY)
        cursor.copy_expert(f"COPY {USER_TRUTH_TABLE} ({_USER_COLUMNS}) FROM STDIN", _user_rows(truth, rows))
    cursor.copy_expert(f"COPY {POST_TRUTH_TABLE} ({_POST_COLUMNS}) FROM STDIN", _post_rows(truth))


def _array_literals(matrix: FloatArray) -> list[str]:
    text = io.StringIO()
    np.savetxt(text, matrix, fmt="%.17g", delimiter=",")
    return ["{" + line + "}" for line in text.getvalue().splitlines()]


def _active_day_literals(truth: WorldTruth, rows: slice) -> list[tuple[str, str]]:
    """Each user's active days and their weights as array literals (``{}`` for users on the global weights)."""
    ptr = truth.user_day_ptr
    spans = zip(ptr[:-1][rows].tolist(), ptr[1:][rows].tolist(), strict=True)
    days, weights = truth.user_days, truth.user_day_weights
    return [
        ("{" + ",".join(map(str, days[a:b].tolist())) + "}", "{" + ",".join(map(repr, weights[a:b].tolist())) + "}")
        for a, b in spans
    ]


def _user_rows(truth: WorldTruth, rows: slice) -> io.StringIO:
    arrays = zip(
        _array_literals(truth.user_topic_taste[rows]),
        _array_literals(truth.user_group_taste[rows]),
        _array_literals(truth.user_interest[rows]),
        _active_day_literals(truth, rows),
        strict=True,
    )
    scalars = zip(
        truth.user_id[rows].tolist(),
        truth.user_draws[rows].tolist(),
        truth.user_bias[rows].tolist(),
        strict=True,
    )
    lines = (
        f"{u}\t{d!r}\t{b!r}\t{t}\t{g}\t{i}\t{days}\t{weights}\n"
        for (u, d, b), (t, g, i, (days, weights)) in zip(scalars, arrays, strict=True)
    )
    return io.StringIO("".join(lines))


def _post_rows(truth: WorldTruth) -> io.StringIO:
    columns = (
        truth.post_id,
        truth.post_topic,
        truth.post_subtopic,
        truth.post_group,
        truth.post_quality,
        truth.post_popularity,
        truth.post_release_day,
        truth.post_trend_days,
    )
    lines = (
        "\t".join(repr(value) for value in row) + ("\tt\n" if shown else "\tf\n")
        for *row, shown in zip(*(c.tolist() for c in columns), truth.post_shown.tolist(), strict=True)
    )
    return io.StringIO("".join(lines))


def load_truth(engine: Engine) -> WorldTruth:
    """The truth of the world last seeded into this database.

    Raises:
        DataValidationError: The database holds no synthetic world (it was not filled by ``postrec seed``).
    """
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(PARAMS_TABLE):
            raise DataValidationError("no synthetic world in this database: run `postrec seed` first")
        params_row = conn.execute(sa.text(f"SELECT params::text FROM {PARAMS_TABLE}")).first()
        if params_row is None:
            raise DataValidationError("the synthetic world's parameters are missing: run `postrec seed` again")
        # Parsed first: a world saved by another version fails here with a message, not on a missing column.
        params = WorldParams.from_json(params_row[0])
        users = conn.execute(sa.text(f"SELECT {_USER_COLUMNS} FROM {USER_TRUTH_TABLE} ORDER BY user_id")).all()
        posts = conn.execute(sa.text(f"SELECT {_POST_COLUMNS} FROM {POST_TRUTH_TABLE} ORDER BY post_id")).all()
    return _assemble(params, users, posts)


def _assemble(params: WorldParams, users: Sequence[Any], posts: Sequence[Any]) -> WorldTruth:
    user_cols, post_cols = list(zip(*users, strict=True)), list(zip(*posts, strict=True))
    day_counts = np.array([len(days) for days in user_cols[6]], dtype=np.int64)
    return WorldTruth(
        params=params,
        user_id=np.array(user_cols[0], dtype=np.int64),
        user_draws=np.array(user_cols[1], dtype=np.float64),
        user_bias=np.array(user_cols[2], dtype=np.float64),
        user_topic_taste=np.array(user_cols[3], dtype=np.float64),
        user_group_taste=np.array(user_cols[4], dtype=np.float64),
        user_interest=np.array(user_cols[5], dtype=np.float64),
        user_day_ptr=np.concatenate([[0], np.cumsum(day_counts)]).astype(np.int64),
        user_days=np.array([d for days in user_cols[6] for d in days], dtype=np.int64),
        user_day_weights=np.array([w for weights in user_cols[7] for w in weights], dtype=np.float64),
        post_id=np.array(post_cols[0], dtype=np.int64),
        post_topic=np.array(post_cols[1], dtype=np.int64),
        post_subtopic=np.array(post_cols[2], dtype=np.int64),
        post_group=np.array(post_cols[3], dtype=np.int64),
        post_quality=np.array(post_cols[4], dtype=np.float64),
        post_popularity=np.array(post_cols[5], dtype=np.float64),
        post_release_day=np.array(post_cols[6], dtype=np.float64),
        post_trend_days=np.array(post_cols[7], dtype=np.float64),
        post_shown=np.array(post_cols[8], dtype=bool),
    )
