"""``postrec evaluate`` end to end on the tiny world, and the leakage guard."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

from batch.evaluation.evaluate import EvaluateOptions, evaluated_models, evaluation_settings, run_evaluation
from batch.evaluation.report import EvaluationReport
from batch.pipeline.artifacts import latest_artifact_path, load_artifact
from batch.pipeline.build import run_build
from batch.pipeline.embed import MINILM_METHOD
from batch.pipeline.nn_feature import NN_SCORE, warn_missing_torch_once
from batch.pipeline.options import BuildOptions
from batch.world.seed import seed_database
from common.settings import Settings
from tests.unit.batch.pipeline.test_embed import needs_dl


@pytest.fixture
def tiny_world(engine: Engine) -> Engine:
    seed_database(engine, "tiny", 42)
    return engine


def by_name(report: EvaluationReport) -> dict[str, tuple[float, float, float]]:
    return {s.name: (s.hitrate, s.hitrate_low, s.hitrate_high) for s in report.scores}


def test_model_beats_popular_and_stays_under_the_oracle(
    tiny_world: Engine, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    report = run_evaluation(settings, tiny_world, EvaluateOptions(out_dir=tmp_path / "report"))
    scores = by_name(report)
    seen_aware = {"popularity", "recent_popularity", "item_knn", "als", "ease"}
    baselines = {"random", "popular", "oracle", "oracle_topic_level"} | seen_aware
    assert set(scores) - {"nn"} == baselines | {"control", "test"}  # nn: where the sequence model ran (torch)
    for model in ("control", "test"):  # both scored for every hold-out user, whatever its A/B group
        # Learned something: above random's whole interval. On this tiny world (187 hold-out users) test ties
        # unfiltered popular's upper end (0.144) and both models are below the seen-aware baselines; how the models
        # rank against the baselines is measured on the small worlds by bench/baselines_matrix.py, not here.
        assert scores[model][0] > scores["random"][2]
        assert scores["oracle"][0] > scores[model][0]
    # knowing users only by topic costs the oracle a part of its lead
    assert scores["popular"][0] < scores["oracle_topic_level"][0] < scores["oracle"][0]
    # leaving out what was seen lifts popularity itself
    assert scores["popularity"][0] > scores["popular"][0]
    # the A/B contrast and each model against the best seen-aware baseline, user by user
    best = max(seen_aware, key=lambda name: scores[name][0])
    for first, second, key in (("test", "control", "test - control"), ("control", best, "control - best baseline")):
        mean, low, high = report.differences[key]
        assert mean == pytest.approx(scores[first][0] - scores[second][0]) and low <= mean <= high
    markdown = (tmp_path / "report" / "evaluation.md").read_text()
    assert markdown.startswith("# Evaluation as of") and "ease {'regularization':" in markdown
    assert "| test - best baseline |" in markdown and f"paired differences is {best}:" in markdown
    # a week holds the users a window must (a third of the tiny world's likers), so it stays a week, and says so
    assert report.window_days == 7 and "7 days" in markdown and "sized_by=least" in markdown
    assert (tmp_path / "report" / "hitrate.png").exists()
    # the evaluation's own versions are gone, and nothing was written under the live prefix
    assert list(redis_client.scan_iter(match=f"{settings.prefix}*")) == []


def test_leakage_guard_brings_every_model_to_random(
    tiny_world: Engine, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # With the nn feature, so that its column and the nn row are guarded too (off by default).
    options = EvaluateOptions(out_dir=tmp_path, shuffle_holdout=True, nn_feature=True)
    report = run_evaluation(settings, tiny_world, options)
    scores = by_name(report)
    _, random_low, random_high = scores["random"]
    for name, (_, low, high) in scores.items():
        assert low <= random_high and high >= random_low, f"{name} still beats random on shuffled likes"


def embedded_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("embedded posts:")]


@needs_dl
def test_evaluation_reuses_the_builds_embedding_cache(
    tiny_world: Engine, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The evaluation's data dir is its own, but its post vectors come from the deployment's cache."""
    settings = replace(settings, embedding_cache=None)  # the deployment's own, empty, not the session's shared one
    caplog.set_level("INFO", logger="batch.pipeline.embed")
    run_build(settings, tiny_world, BuildOptions.from_settings(settings, publish=False, embedding=MINILM_METHOD))
    run_evaluation(settings, tiny_world, EvaluateOptions(out_dir=tmp_path / "report", embedding=MINILM_METHOD))
    build, evaluation = embedded_lines(caplog)
    posts = int(build.split("computed=")[1].split()[0])
    assert posts > 0 and "reused=0" in build
    assert f"computed=0 reused={posts} " in evaluation


def test_nn_ablation_reports_test_without_the_sequence_score(
    tiny_world: Engine, settings: Settings, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    options = EvaluateOptions(out_dir=tmp_path / "report", oracle=False, nn_ablation=True)

    report = run_evaluation(settings, tiny_world, options)

    scores = {score.name: score for score in report.scores}
    with_nn, without_nn = scores["test"], scores["test_without_nn"]
    # the two models differ by the nn_score column alone, and so do their lists
    artifact = load_artifact(latest_artifact_path(evaluation_settings(settings).data_dir))
    names = {name: list(model.feature_names_) for name, model in artifact.models.items()}
    assert names["test"] == [*names["test_without_nn"], NN_SCORE]
    figures = (with_nn.hitrate, with_nn.precision, with_nn.ndcg, with_nn.coverage)
    assert figures != (without_nn.hitrate, without_nn.precision, without_nn.ndcg, without_nn.coverage)
    assert without_nn.hitrate_low <= without_nn.hitrate <= without_nn.hitrate_high
    mean, low, high = report.differences["test - test_without_nn"]
    assert mean == pytest.approx(with_nn.hitrate - without_nn.hitrate) and low <= mean <= high
    assert "| test - test_without_nn |" in (tmp_path / "report" / "evaluation.md").read_text()


def test_the_ablation_row_only_when_asked_for_and_torch_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    assert evaluated_models(EvaluateOptions(nn_ablation=True)) == ("control", "test", "test_without_nn")
    assert evaluated_models(EvaluateOptions(nn_feature=True)) == ("control", "test")
    assert evaluated_models(EvaluateOptions()) == ("control", "test")
    warn_missing_torch_once.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)  # the lean install: the two would be the same model
    assert evaluated_models(EvaluateOptions(nn_ablation=True)) == ("control", "test")
    warn_missing_torch_once.cache_clear()
