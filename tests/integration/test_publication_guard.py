"""The publication guard on the tiny world: a model validation ranks below the best baseline is not published."""

from __future__ import annotations

from dataclasses import replace

import pytest

from batch.pipeline.artifacts import latest_artifact_path
from batch.pipeline.build import run_build
from batch.pipeline.options import BuildOptions, TrainParams
from batch.world.seed import seed_database
from common.errors import WorseThanBaselineError
from common.payloads import VersionMeta

GOOD = BuildOptions(k=30, params=TrainParams(iterations=20, depth=4, max_eval_users=100, threads=1))
# One stump: scores barely differ between posts, so its lists are close to an arbitrary order.
STUMP = replace(GOOD, params=replace(GOOD.params, iterations=1, depth=1, learning_rate=0.01))


@pytest.fixture
def control_only(settings):
    """Every user in control: only the base model is trained, no embeddings (fast)."""
    return replace(settings, control_percent=100)


@pytest.fixture
def world(engine):
    seed_database(engine, "tiny", 42)
    return engine


def test_a_model_worse_than_a_baseline_is_refused_and_the_live_version_stays(control_only, world, redis_client, keys):
    live = run_build(control_only, world, GOOD)
    saved = latest_artifact_path(control_only.data_dir)

    with pytest.raises(WorseThanBaselineError) as refused:
        run_build(control_only, world, STUMP)

    message = str(refused.value)
    assert "control hitrate@5 0." in message and "--allow-worse" in message
    assert redis_client.get(keys.current).decode() == live.version
    assert latest_artifact_path(control_only.data_dir) == saved


def test_allow_worse_publishes_it_and_records_the_figures(control_only, world, redis_client, keys):
    built = run_build(control_only, world, replace(STUMP, allow_worse=True))

    assert redis_client.get(keys.current).decode() == built.version
    meta = VersionMeta.from_hash(redis_client.hgetall(keys.meta(built.version)))
    benchmark = built.prepared.benchmark
    assert benchmark is not None and benchmark.comparisons[0].worse
    best = benchmark.comparisons[0]
    assert meta.baselines[best.baseline] == pytest.approx(best.baseline_hitrate)
    assert set(meta.baselines) == {"popularity", "recent_popularity", "item_knn", "als", "ease"}
    assert meta.metrics["hitrate_at_5"] < best.baseline_hitrate
