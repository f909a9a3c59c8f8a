"""The build's baselines are tuned on the label window's users and the validation window's together."""

from __future__ import annotations

from dataclasses import replace

import pytest

from batch.pipeline.build import run_build
from batch.pipeline.options import BuildOptions, TrainParams
from batch.world.seed import seed_database

OPTIONS = BuildOptions(k=30, publish=False, params=TrainParams(iterations=20, depth=4, threads=1))


@pytest.fixture
def control_only(settings):
    """Every user in control: only the base model is trained, no embeddings (fast)."""
    return replace(settings, control_percent=100)


def test_each_baseline_is_chosen_over_both_windows_and_judged_on_the_validation_one(control_only, engine):
    seed_database(engine, "tiny", 42)
    benchmark = run_build(control_only, engine, OPTIONS).prepared.benchmark

    assert benchmark is not None
    assert benchmark.tuning_users > benchmark.users > 0  # the label window added its users
    for tuned in benchmark.baselines.values():
        pooled = dict((tuple(sorted(point.items())), rate) for point, rate in tuned.tried)
        assert pooled[tuple(sorted(tuned.params.items()))] == max(pooled.values())
        assert tuned.per_user.size == benchmark.users
        assert tuned.hitrate == pytest.approx(tuned.per_user.mean())
