"""The report writes every figure to JSON, a readable Markdown table and the PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from batch.evaluation.report import EvaluationReport, RecommenderScore, write_report


def score(name: str, hitrate: float) -> RecommenderScore:
    return RecommenderScore(
        name=name,
        hitrate=hitrate,
        hitrate_low=hitrate - 0.01,
        hitrate_high=hitrate + 0.01,
        precision=0.1,
        ndcg=0.2,
        coverage=0.5,
        gap_closure=float("nan"),
        by_group={"activity": {"low": hitrate, "high": 0.9}},
    )


def test_report_files_and_comparison_with_the_last_run(tmp_path: Path) -> None:
    report = EvaluationReport(
        as_of="2021-12-15",
        window_days=7,
        users=10,
        posts=5,
        scores=[score("popular", 0.3), score("control", 0.5)],
        feature_importance={"age": 2.0, "topic": 5.0},
        calibration=[(0.1, 0.12), (0.3, 0.28)],
    )
    write_report(report, tmp_path / "first")
    markdown = write_report(report, tmp_path / "second", previous=tmp_path / "first" / "evaluation.json").read_text()
    data = json.loads((tmp_path / "second" / "evaluation.json").read_text())
    assert [s["hitrate"] for s in data["scores"]] == [0.3, 0.5]
    assert "| control | 0.5000 | 0.4900..0.5100 |" in markdown and "+0.0000 |" in markdown
    for plot in ("hitrate.png", "hitrate_by_activity.png", "feature_importance.png", "calibration.png"):
        assert (tmp_path / "second" / plot).read_bytes().startswith(b"\x89PNG")


def test_a_rerun_into_the_same_folder_compares_with_the_run_it_replaces(tmp_path: Path) -> None:
    def report(control: float) -> EvaluationReport:
        scores = [score("popular", 0.3), score("control", control)]
        return EvaluationReport(as_of="2021-12-15", window_days=7, users=10, posts=5, scores=scores)

    write_report(report(0.5), tmp_path, previous=tmp_path / "evaluation.json")
    markdown = write_report(report(0.45), tmp_path, previous=tmp_path / "evaluation.json").read_text()
    assert "| control | 0.4500 |" in markdown and "| -0.0500 |" in markdown
