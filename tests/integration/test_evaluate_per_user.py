"""``postrec evaluate --protocol per-user`` on the tiny world: each user's last 20% of views held out."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.evaluation.evaluate import PER_USER, EvaluateOptions, run_evaluation
from batch.evaluation.per_user import drop_abandoned_scratch, scratch_without_holdout
from batch.pipeline.extract import load_feed
from batch.world.seed import seed_database
from batch.world.store import PARAMS_TABLE, POST_TRUTH_TABLE, USER_TRUTH_TABLE
from common.columns import Action, Col
from common.settings import Settings


@pytest.fixture
def tiny_world(engine: Engine) -> Engine:
    seed_database(engine, "tiny", 42)
    return engine


def scratch_schemas(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        sql = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'postrec_holdout%'"
        return list(conn.execute(sa.text(sql)).scalars())


def test_the_scratch_feed_lacks_each_users_last_fifth_of_views(tiny_world: Engine) -> None:
    full = load_feed(tiny_world)
    with scratch_without_holdout(tiny_world) as scratch:
        kept = load_feed(scratch.engine)
        assert scratch_schemas(tiny_world) == [scratch.schema]
    assert scratch_schemas(tiny_world) == []

    views = full.filter(pl.col(Col.ACTION) == Action.VIEW).group_by(Col.USER_ID).len("all")
    left = kept.filter(pl.col(Col.ACTION) == Action.VIEW).group_by(Col.USER_ID).len("kept")
    counts = views.join(left, on=Col.USER_ID, how="left").fill_null(0)
    held = counts["all"] - counts["kept"]
    assert (held >= (counts["all"] * 0.2).floor()).all()  # at least the last fifth (more only on tied times)
    assert (held > 0).sum() > 0.9 * counts.height
    # what is held out is each user's tail: nothing kept is later than anything held out
    last_kept = kept.group_by(Col.USER_ID).agg(pl.col(Col.TIMESTAMP).max().alias("last"))
    held_rows = full.join(kept, on=full.columns, how="anti")
    first_held = held_rows.group_by(Col.USER_ID).agg(pl.col(Col.TIMESTAMP).min().alias("first"))
    order = first_held.join(last_kept, on=Col.USER_ID)
    assert order.height > 0 and (order["last"] < order["first"]).all()


def test_per_user_protocol_runs_without_an_oracle_and_names_itself(
    tiny_world: Engine, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with tiny_world.begin() as conn:  # data as a user loads it: no world truth at all
        conn.execute(sa.text(f"DROP TABLE {PARAMS_TABLE}, {USER_TRUTH_TABLE}, {POST_TRUTH_TABLE}"))
    options = EvaluateOptions(out_dir=tmp_path, oracle=False, protocol=PER_USER)

    report = run_evaluation(settings, tiny_world, options)

    scores = {score.name: score.hitrate for score in report.scores}
    assert report.protocol == PER_USER and report.users > 100
    assert set(scores) == {"random", "popular", "popularity", "recent_popularity", "item_knn", "als", "ease"} | {
        "control",
        "test",
    }
    assert scores["control"] > scores["random"] and scores["ease"] > scores["popular"]
    assert "protocol per-user" in (tmp_path / "evaluation.md").read_text()
    assert scratch_schemas(tiny_world) == []
    assert list(redis_client.scan_iter(match=f"{settings.prefix}*")) == []


def test_a_later_run_drops_the_scratch_schemas_of_killed_runs_only(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # what a killed run leaves: its schema, and no session holding its lock
    with engine.begin() as conn:
        for name in ("postrec_holdout_0badf00d", "postrec_holdout_keep"):
            conn.execute(sa.text(f"CREATE SCHEMA {name}"))
            conn.execute(sa.text(f"CREATE TABLE {name}.feed_data (user_id int)"))
    caplog.set_level("WARNING", logger="batch.evaluation.per_user")

    with scratch_without_holdout(engine) as running, scratch_without_holdout(engine) as second:
        # the second run found the first one's schema in use (its lock held) and kept it
        assert sorted(scratch_schemas(engine)) == sorted(["postrec_holdout_keep", running.schema, second.schema])
        assert load_feed(running.engine).height == 0

    assert scratch_schemas(engine) == ["postrec_holdout_keep"]  # not of the scratch pattern: not ours to drop
    dropped = [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].endswith(": ['postrec_holdout_0badf00d']")


KILLED_RUN = """
import sys, time
from batch.evaluation.per_user import scratch_without_holdout
from common.db import make_engine
with scratch_without_holdout(make_engine(sys.argv[1])) as scratch:
    print(scratch.schema, flush=True)
    time.sleep(600)
"""


def test_the_scratch_schema_of_a_killed_process_is_dropped_by_the_next_run(engine: Engine, database_url: str) -> None:
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, database_url], stdout=subprocess.PIPE, text=True)
    try:
        schema = run.stdout.readline().strip() if run.stdout else ""
        assert scratch_schemas(engine) == [schema]
        assert drop_abandoned_scratch(engine) == []  # still running: kept
    finally:
        run.kill()  # SIGKILL: no finally of its own runs
        run.wait()
    # PostgreSQL ends the killed client's session when it reads the closed socket, a moment after the kill
    for _ in range(100):
        if drop_abandoned_scratch(engine):
            break
        time.sleep(0.1)
    assert scratch_schemas(engine) == []
