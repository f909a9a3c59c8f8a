"""The neural sequence feature in ``postrec build`` on the tiny world: present when asked for (``--nn-feature``),
absent by default, and on the lean install (no torch) left out with one warning while the build still publishes."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from batch.evaluation.nn_lists import NN, nn_rankings
from batch.pipeline.build import run_build
from batch.pipeline.embed import warn_fallback_once
from batch.pipeline.nn_feature import NN_SCORE, warn_missing_torch_once
from batch.pipeline.options import BuildOptions, TrainParams
from batch.ranking.topk import NO_POST
from batch.world.seed import seed_database
from common.ab import TEST

# The tiny world is too small for the guard against baselines to judge these fast models.
OPTIONS = BuildOptions(
    k=30, params=TrainParams(iterations=20, depth=4, max_eval_users=100, threads=1), allow_worse=True
)


@pytest.fixture
def world(engine):
    seed_database(engine, "tiny", 42)
    return engine


def test_the_test_model_reads_the_nn_score_only_when_asked(settings, world):
    pytest.importorskip("torch")
    with_nn = run_build(settings, world, replace(OPTIONS, publish=False, nn_feature=True))
    without = run_build(settings, world, replace(OPTIONS, publish=False))

    assert with_nn.prepared.models.by_group[TEST].feature_names_[-1] == NN_SCORE
    assert NN_SCORE not in without.prepared.models.by_group[TEST].feature_names_
    # The nn row of the evaluation: the same model alone, never a post shown or liked before as_of.
    features = with_nn.prepared.score_features
    users = features.user_ids.astype(np.int64)
    lists = nn_rankings(with_nn.prepared, users, 10)[NN]
    assert lists.shape == (users.size, 10) and (lists != NO_POST).all()
    shown = features.was_shown(np.repeat(features.user_ids, 10), lists.ravel().astype(np.int32))
    assert not shown.any()
    assert nn_rankings(without.prepared, users, 10) == {}


def test_the_lean_install_builds_without_the_nn_score_and_says_so_once(
    settings, world, redis_client, keys, monkeypatch, caplog
):
    warn_missing_torch_once.cache_clear()
    warn_fallback_once.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)  # `make install EXTRAS=dev`: no torch, no MiniLM

    built = run_build(settings, world, replace(OPTIONS, nn_feature=True))

    assert NN_SCORE not in built.prepared.models.by_group[TEST].feature_names_
    assert redis_client.get(keys.current).decode() == built.version
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert sum(NN_SCORE in message for message in warnings) == 1
    warn_missing_torch_once.cache_clear()
    warn_fallback_once.cache_clear()
