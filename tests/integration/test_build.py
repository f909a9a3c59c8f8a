"""``postrec build`` and ``score`` end to end on the tiny synthetic world, and their faults, on the real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from batch.pipeline.artifacts import METADATA_FILE, latest_artifact_path
from batch.pipeline.build import run_build, run_score
from batch.pipeline.embed_features import EmbedFeature
from batch.pipeline.extract import load_feed, load_posts
from batch.pipeline.feed_counts import count_feed, load_feed_counts
from batch.pipeline.options import BuildOptions, TrainParams
from batch.pipeline.score import predict_raw, score_group
from batch.world.seed import seed_database
from common.ab import CONTROL, TEST, assign_group
from common.columns import Action, Col, Table
from common.payloads import VersionMeta
from postrec.cli import main

# Three correction weights: the weigh step scores test's validation lists at each (the default is the fitted one).
FAST = TrainParams(iterations=20, depth=4, max_eval_users=100, threads=1, correction_weights=(0.0, 0.5, 1.0))
# Twenty trees on the tiny world lose to popularity, so the publication guard would refuse them: these tests are
# about what a build publishes, and tests/integration/test_publication_guard.py tests the guard itself.
OPTIONS = BuildOptions(k=30, params=FAST, allow_worse=True)


@pytest.fixture
def world(engine):
    seed_database(engine, "tiny", 42)
    return engine


def prefix_keys(client, keys) -> list[bytes]:
    return list(client.scan_iter(match=f"{keys.prefix}:*", count=1000))


def liked_before(engine, as_of: datetime) -> pl.DataFrame:
    return load_feed(engine, end=as_of, action=Action.LIKE).select(Col.USER_ID, Col.POST_ID).unique()


def test_build_publishes_every_user_without_posts_they_liked(settings, world, redis_client, keys):
    built = run_build(settings, world, OPTIONS)

    version = redis_client.get(keys.current).decode()
    source = built.prepared.source
    assert version == built.version
    meta = VersionMeta.from_hash(redis_client.hgetall(keys.meta(version)))
    assert meta.k == 30 and meta.users == source.users.height and meta.posts == source.posts.height
    assert meta.as_of == source.as_of.isoformat() and "hitrate_at_5" in meta.metrics
    # test's correction weight, chosen on the validation window, is recorded with the figures it was chosen by.
    assert meta.metrics["test_correction_weight"] in FAST.correction_weights
    liked = liked_before(world, source.as_of).group_by(Col.USER_ID).agg(pl.col(Col.POST_ID))
    liked_by = {user: set(posts) for user, posts in liked.iter_rows()}
    for user_id in source.users[Col.USER_ID].to_list():
        posts = [int(p) for p in redis_client.lrange(keys.recs(version, user_id), 0, -1)]
        assert len(posts) == 30 and len(set(posts)) == 30
        assert not set(posts) & liked_by.get(user_id, set())
        assert {int(p) for p in redis_client.smembers(keys.liked(user_id))} == liked_by.get(user_id, set())
    assert redis_client.llen(keys.popular(version)) == source.posts.height
    assert (latest_artifact_path(settings.data_dir) / "model.cbm").is_file()
    rows = built.prepared.rows  # the windows chosen from the likes, with what they hold
    assert rows["valid_users"] > 0 and rows["label_users"] > 0 and rows["history_likes"] > 0
    assert rows["history_likes"] + rows["label_likes"] + rows["valid_likes"] == source.likes.height


def test_each_user_is_scored_by_the_model_of_its_group(settings, world, redis_client, keys):
    built = run_build(settings, world, OPTIONS)
    state = built.prepared

    version = redis_client.get(keys.current).decode()
    meta = VersionMeta.from_hash(redis_client.hgetall(keys.meta(version)))
    models = meta.models
    assert models[CONTROL] == models[TEST] == built.version and models["embedding"].startswith(("tfidf-svd", "all-"))
    assert (meta.salt, meta.control_percent) == (settings.ab_salt, settings.control_percent)
    users = state.source.users[Col.USER_ID].to_list()
    groups = {user: assign_group(user, settings.ab_salt, settings.control_percent) for user in users}
    assert set(groups.values()) == {CONTROL, TEST}
    expected = {
        name: dict(score_group(state, name, [u for u in users if groups[u] == name], 30).lists())
        for name in (CONTROL, TEST)
    }
    differ = 0
    for user in users:
        posts = [int(p) for p in redis_client.lrange(keys.recs(version, user), 0, -1)]
        assert posts == expected[groups[user]][user]
        other = TEST if groups[user] == CONTROL else CONTROL
        differ += posts != dict(score_group(state, other, [user], 30).lists())[user]
    assert differ > 0  # the two models rank differently, so the check above tells the groups apart
    # By default test adds four columns to control's: the text taste, the text kNN and the text cluster lifts (likes,
    # views); the post-only embedding columns are off.
    by_group = state.models.by_group
    added = [EmbedFeature.TASTE_COSINE, EmbedFeature.TEXT_KNN, EmbedFeature.CLUSTER_LIFT, EmbedFeature.CLUSTER_VIEWS]
    assert by_group[TEST].feature_names_ == [*by_group[CONTROL].feature_names_, *added]
    # test is control's trees followed by a correction that reads the added column (TrainParams.on_control).
    control_trees = by_group[CONTROL].tree_count_
    assert by_group[TEST].tree_count_ == control_trees + FAST.correction_iterations
    head = by_group[TEST].copy()
    head.shrink(ntree_end=control_trees)
    rows = np.random.default_rng(0).normal(size=(50, len(by_group[TEST].feature_names_)))
    np.testing.assert_allclose(predict_raw(head, rows), predict_raw(by_group[CONTROL], rows))


@pytest.mark.parametrize(("percent", "trained", "file"), [(100, CONTROL, "model.cbm"), (0, TEST, "test.cbm")])
def test_a_one_sided_split_trains_only_its_model(settings, world, redis_client, keys, percent, trained, file):
    built = run_build(replace(settings, control_percent=percent), world, OPTIONS)

    meta = VersionMeta.from_hash(redis_client.hgetall(keys.meta(built.version)))
    assert set(meta.models) - {"embedding"} == {trained}
    assert set(built.prepared.models.by_group) == {trained}
    assert [path.name for path in latest_artifact_path(settings.data_dir).glob("*.cbm")] == [file]


def test_score_republishes_with_the_saved_model(settings, world, redis_client, keys):
    first = run_build(settings, world, OPTIONS)

    second = run_score(settings, world, OPTIONS)

    assert redis_client.get(keys.current).decode() == second.version != first.version
    assert redis_client.get(keys.previous).decode() == first.version
    assert second.prepared.models.version == first.version
    meta = VersionMeta.from_hash(redis_client.hgetall(keys.meta(second.version)))
    assert first.version in meta.models.values()


def test_score_builds_the_collaborative_features_with_the_saved_settings(settings, world):
    # The build chose EASE's λ for its models on the label window; a rescore must not fall back to the default.
    first = run_build(settings, world, replace(OPTIONS, publish=False))
    metadata_file = latest_artifact_path(settings.data_dir) / METADATA_FILE
    metadata = json.loads(metadata_file.read_text())
    assert metadata["collab_params"] == asdict(first.prepared.models.collab_params)
    metadata["collab_params"]["ease_regularization"] = 12_345.0
    metadata_file.write_text(json.dumps(metadata))

    rescored = run_score(settings, world, replace(OPTIONS, publish=False))

    assert rescored.prepared.models.collab_params.ease_regularization == 12_345.0
    assert rescored.prepared.models.collab_params.seed == first.prepared.models.collab_params.seed


def test_the_same_seed_builds_the_same_top_5(settings, world):
    options = replace(OPTIONS, publish=False)

    first = run_build(settings, world, options).rankings
    second = run_build(settings, world, options).rankings

    assert (first.post_ids[:, :5] == second.post_ids[:, :5]).all()


def test_counts_in_postgresql_equal_counts_in_polars(world):
    cutoffs = [datetime(2021, 11, 1), datetime(2021, 12, 15, 18, 30)]
    posts = load_posts(world)
    feed = load_feed(world)

    for cutoff, in_sql in zip(cutoffs, load_feed_counts(world, cutoffs), strict=True):
        in_polars = count_feed(feed, posts, cutoff)
        assert in_sql.users.equals(in_polars.users)
        assert in_sql.posts.equals(in_polars.posts)
        assert in_sql.user_topics.equals(in_polars.user_topics)


def cli_env(monkeypatch, settings, **overrides: str) -> None:
    values = {
        "POSTREC_DATABASE_URL": settings.database_url,
        "POSTREC_REDIS_URL": settings.redis_url,
        "POSTREC_PREFIX": settings.prefix,
        "POSTREC_DATA_DIR": str(settings.data_dir),
    }
    for name, value in {**values, **overrides}.items():
        monkeypatch.setenv(name, value)


def test_a_build_writes_nothing_into_the_working_directory(settings, world, redis_client, keys, monkeypatch, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    cli_env(monkeypatch, settings)

    assert main(["build", "--k", "5", "--allow-worse"]) == 0  # the tiny world's model is below popularity

    assert redis_client.get(keys.current) is not None
    assert list(scratch.iterdir()) == []  # CatBoost's catboost_info/ among others


def test_unreachable_postgresql_fails_clearly_and_leaves_redis_untouched(
    settings, redis_client, keys, monkeypatch, capfd
):
    cli_env(monkeypatch, settings, POSTREC_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")

    code = main(["build", "--k", "5"])

    assert code != 0
    assert "unreachable" in capfd.readouterr().err
    assert prefix_keys(redis_client, keys) == []


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (f"INSERT INTO {Table.FEED} VALUES ('2021-12-01', 200, 1, 'share', 0)", "unknown action"),
        (f"INSERT INTO {Table.FEED} VALUES ('2021-12-01', 999999, 1, 'view', 0)", "user missing"),
    ],
)
def test_invalid_data_fails_clearly_and_keeps_the_live_version(
    settings, world, redis_client, keys, monkeypatch, capfd, statement, message
):
    live = run_build(settings, world, OPTIONS).version
    before = sorted(prefix_keys(redis_client, keys))
    with world.begin() as conn:
        conn.execute(sa.text(statement))
    cli_env(monkeypatch, settings)

    code = main(["build", "--k", "5"])

    assert code != 0
    assert message in capfd.readouterr().err
    assert redis_client.get(keys.current).decode() == live
    assert sorted(prefix_keys(redis_client, keys)) == before


def test_unreachable_redis_fails_before_any_work(settings, world, monkeypatch, capfd):
    cli_env(monkeypatch, settings, POSTREC_REDIS_URL="redis://127.0.0.1:1/0")

    code = main(["build"])

    assert code != 0
    err = capfd.readouterr().err
    assert "Redis" in err and "unreachable" in err
    assert not (settings.data_dir / "models").exists()


def test_rollback_command_reports_or_refuses(settings, world, redis_client, keys, monkeypatch, capfd):
    cli_env(monkeypatch, settings)
    assert main(["rollback"]) != 0
    assert "no previous version" in capfd.readouterr().err
    first = run_build(settings, world, OPTIONS).version
    run_score(settings, world, OPTIONS)

    assert main(["rollback"]) == 0

    assert redis_client.get(keys.current).decode() == first


def complete_or_untouched(client, keys, old: str) -> str:
    current = client.get(keys.current).decode()
    if current == old:
        return "old"
    meta = VersionMeta.from_hash(client.hgetall(keys.meta(current)))
    lists = sum(1 for _ in client.scan_iter(match=keys.version_prefix(current) + "recs:*", count=1000))
    assert lists == meta.users
    return "new"


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_s", [1.5, 3.0, 4.5, 6.0])
def test_a_build_killed_at_any_point_leaves_no_half_visible_version(
    settings, world, redis_client, keys, monkeypatch, kill_after_s
):
    old = run_build(settings, world, OPTIONS).version
    env = {
        **os.environ,
        "POSTREC_DATABASE_URL": settings.database_url,
        "POSTREC_REDIS_URL": settings.redis_url,
        "POSTREC_PREFIX": settings.prefix,
        "POSTREC_DATA_DIR": str(settings.data_dir),
    }
    command = [sys.executable, "-m", "postrec", "build", "--k", "30", "--allow-worse"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + kill_after_s
    while time.monotonic() < deadline and process.poll() is None:
        assert complete_or_untouched(redis_client, keys, old) in {"old", "new"}
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert complete_or_untouched(redis_client, keys, old) in {"old", "new"}
    assert not list(settings.data_dir.glob("models/*.partial")) or redis_client.get(keys.current).decode() == old
