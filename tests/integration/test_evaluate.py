"""``postrec evaluate`` end to end on the tiny world, and the leakage guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

from batch.evaluation.evaluate import EvaluateOptions, run_evaluation
from batch.evaluation.report import EvaluationReport
from batch.world.seed import seed_database
from common.settings import Settings


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
    baselines = {"random", "popular", "segment_popular", "als", "oracle", "oracle_topic_level"}
    assert set(scores) == baselines | {"control", "test"}
    for model in ("control", "test"):  # both scored for every hold-out user, whatever its A/B group
        assert scores[model][1] > scores["popular"][2]  # intervals do not overlap
        assert scores["oracle"][0] > scores[model][0]
    # knowing users only by topic costs the oracle a part of its lead
    assert scores["popular"][0] < scores["oracle_topic_level"][0] < scores["oracle"][0]
    assert (tmp_path / "report" / "evaluation.md").read_text().startswith("# Evaluation as of")
    assert (tmp_path / "report" / "hitrate.png").exists()
    # the evaluation's own versions are gone, and nothing was written under the live prefix
    assert list(redis_client.scan_iter(match=f"{settings.prefix}*")) == []


def test_leakage_guard_brings_every_model_to_random(
    tiny_world: Engine, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    report = run_evaluation(settings, tiny_world, EvaluateOptions(out_dir=tmp_path, shuffle_holdout=True))
    scores = by_name(report)
    _, random_low, random_high = scores["random"]
    for name, (_, low, high) in scores.items():
        assert low <= random_high and high >= random_low, f"{name} still beats random on shuffled likes"
