"""The per-user hold-out: each user's last share of views (by time) is held out, and the models and baselines are
built on everything else.

Real data rarely has one cutoff that catches most users (many are active a few days only), so the checker holds
out the tail of every user's own history. Here each user with enough views gets a start: the time of the first of
their last 20% of views; every feed row of that user at or after it is held out. The build reads a scratch schema
of the same database that holds the feed without those rows, and the user and post tables
(copied), so nothing of the build needs to know about the protocol; the schema is dropped afterwards, whatever
happens in Python.

A killed process cannot drop it, so each run first drops the scratch schemas no running evaluation owns. Ownership
is provable: an evaluation holds a session-level advisory lock named after its schema, taken before the schema is
created and released after it is dropped, on a connection of its own. PostgreSQL releases a session's locks when
the session ends, and a killed client's session ends with its socket; so a scratch schema whose lock can be taken
belongs to nobody. (Evaluations from before this rule held no lock: running one next to a newer one on the same
database would lose its schema.)
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from batch.evaluation.holdout import Holdout, build_holdout
from batch.pipeline.extract import copy_query
from common.columns import Action, Col, Table

log = logging.getLogger(__name__)

HOLDOUT_SHARE: Final = 0.2
SCRATCH_PREFIX: Final = "postrec_holdout_"
SCRATCH_NAME: Final = re.compile(rf"{SCRATCH_PREFIX}([0-9a-f]{{8}})")
# The advisory locks of scratch schemas: (this class, the schema's 32-bit token), apart from any other lock.
LOCK_CLASS: Final = 0x70_68  # "ph"
STARTS: Final = "holdout_start"
START: Final = "start"


@dataclass(frozen=True, slots=True)
class Scratch:
    """The source without the held-out rows.

    Attributes:
        engine: Reads the scratch schema's feed and the source's users and posts under their usual names.
        schema: The scratch schema.
        source_schema: The schema of the real tables.
    """

    engine: Engine
    schema: str
    source_schema: str


def _holdout_sql(scratch: str, source: str) -> list[str]:
    # floor(): a user with fewer than 5 views keeps them all; ties at the start are held out with it.
    return [
        f"CREATE SCHEMA {scratch}",
        f"CREATE TABLE {scratch}.{STARTS} AS SELECT {Col.USER_ID}, min(ts) AS {START} FROM ("
        f'  SELECT {Col.USER_ID}, "{Col.TIMESTAMP}" AS ts,'
        f'    row_number() OVER (PARTITION BY {Col.USER_ID} ORDER BY "{Col.TIMESTAMP}" DESC, {Col.POST_ID} DESC)'
        " AS back,"
        f"    count(*) OVER (PARTITION BY {Col.USER_ID}) AS views"
        f"  FROM {source}.{Table.FEED} WHERE {Col.ACTION} = '{Action.VIEW}'"
        f") v WHERE back <= floor(views * :share) GROUP BY {Col.USER_ID}",
        f"CREATE TABLE {scratch}.{Table.FEED} AS SELECT f.* FROM {source}.{Table.FEED} f"
        f" LEFT JOIN {scratch}.{STARTS} h ON h.{Col.USER_ID} = f.{Col.USER_ID}"
        f' WHERE h.{START} IS NULL OR f."{Col.TIMESTAMP}" < h.{START}',
        # Copies, not views: validation addresses offending rows by ctid, which a view has not.
        f"CREATE TABLE {scratch}.{Table.USERS} AS SELECT * FROM {source}.{Table.USERS}",
        f"CREATE TABLE {scratch}.{Table.POSTS} AS SELECT * FROM {source}.{Table.POSTS}",
        f"ANALYZE {scratch}.{Table.FEED}",
    ]


def _lock_params(schema: str) -> dict[str, int]:
    match = SCRATCH_NAME.fullmatch(schema)
    if match is None:
        raise ValueError(f"{schema!r} is not a scratch schema name ({SCRATCH_PREFIX} and 8 hex digits)")
    return {"cls": LOCK_CLASS, "key": int.from_bytes(bytes.fromhex(match.group(1)), "big", signed=True)}


def _try_lock(conn: Connection, schema: str) -> bool:
    sql = "SELECT pg_try_advisory_lock(:cls, :key)"
    return bool(conn.execute(sa.text(sql), _lock_params(schema)).scalar())


def _unlock(conn: Connection, schema: str) -> None:
    conn.execute(sa.text("SELECT pg_advisory_unlock(:cls, :key)"), _lock_params(schema))
    conn.commit()


def drop_abandoned_scratch(engine: Engine) -> list[str]:
    """Drop the scratch schemas of evaluations that are no longer running (their lock is free); returns them.

    Only names of the scratch pattern are looked at; each is dropped while its lock is held here, so an evaluation
    cannot start on it meanwhile.
    """
    sql = "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :prefix) ORDER BY nspname"
    dropped = []
    with engine.connect() as conn:
        names = conn.execute(sa.text(sql), {"prefix": SCRATCH_PREFIX}).scalars().all()
        for schema in (name for name in names if SCRATCH_NAME.fullmatch(name)):
            if not _try_lock(conn, schema):
                continue  # a running evaluation's
            try:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.commit()
            finally:
                conn.rollback()  # nothing after the commit; after a failure it lets the unlock run
                _unlock(conn, schema)
            dropped.append(schema)
    if dropped:
        log.warning("dropped %d abandoned per-user scratch schema(s) of killed evaluations: %s", len(dropped), dropped)
    return dropped


@contextmanager
def scratch_without_holdout(engine: Engine, share: float = HOLDOUT_SHARE) -> Iterator[Scratch]:
    """A scratch schema whose feed lacks each user's held-out tail; dropped on exit, and by a later run when this
    process is killed (see the module's note).

    Raises:
        ValueError: ``share`` is not in (0, 1).
    """
    if not 0 < share < 1:
        raise ValueError(f"the held-out share must be between 0 and 1, got {share}")
    drop_abandoned_scratch(engine)
    scratch = f"{SCRATCH_PREFIX}{secrets.token_hex(4)}"
    with engine.connect() as owner:  # holds the schema's lock for as long as the schema lives
        if not _try_lock(owner, scratch):
            raise RuntimeError(f"the lock of the new scratch schema {scratch} is taken: run the evaluation again")
        owner.commit()
        try:
            with _created(engine, scratch, share) as made:
                yield made
        finally:
            _unlock(owner, scratch)


@contextmanager
def _created(engine: Engine, scratch: str, share: float) -> Iterator[Scratch]:
    try:
        with engine.begin() as conn:
            source = str(conn.execute(sa.text("SELECT current_schema()")).scalar())
            for statement in _holdout_sql(scratch, source):
                conn.execute(sa.text(statement), {"share": share})
        scratch_engine = sa.create_engine(
            engine.url.update_query_dict({"options": f"-csearch_path={scratch}"}), pool_pre_ping=True
        )
        try:
            yield Scratch(scratch_engine, scratch, source)
        finally:
            scratch_engine.dispose()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {scratch} CASCADE"))


def held_out_likes(engine: Engine, scratch: Scratch) -> pl.DataFrame:
    """(user_id, post_id, start): every like at or after its user's start, with that start."""
    sql = (
        f"SELECT f.{Col.USER_ID}, f.{Col.POST_ID}, h.{START} FROM {scratch.source_schema}.{Table.FEED} f"
        f" JOIN {scratch.schema}.{STARTS} h ON h.{Col.USER_ID} = f.{Col.USER_ID}"
        f""" WHERE f.{Col.ACTION} = '{Action.LIKE}' AND f."{Col.TIMESTAMP}" >= h.{START}"""
    )
    schema = {Col.USER_ID: pl.Int32(), Col.POST_ID: pl.Int32(), START: pl.Datetime("us")}
    return copy_query(engine, sql, schema, {})


def per_user_holdout(engine: Engine, scratch: Scratch, history_likes: pl.DataFrame) -> tuple[Holdout, list[datetime]]:
    """Users with a fresh like in their held-out tail, those likes, and each user's start (for the oracle)."""
    window = held_out_likes(engine, scratch)
    holdout = build_holdout(history_likes, window)
    starts = window.unique(Col.USER_ID).select(Col.USER_ID, START)
    ordered = pl.DataFrame({Col.USER_ID: holdout.user_ids.astype(np.int32)}).join(starts, on=Col.USER_ID, how="left")
    log.info("per-user hold-out: users=%d held-out likes=%d", holdout.user_ids.size, window.height)
    return holdout, ordered[START].to_list()
