"""The report writes every figure to JSON, a readable Markdown table and the PNG plots."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from batch.evaluation.report import EvaluationReport, RecommenderScore, write_report
from common.logs import format_figures


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


NAMES = ["random", "popular", "segment_popular", "als", "control", "test", "oracle_topic_level", "oracle", "ease"]


def test_hitrate_plot_labels_never_overlap() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from batch.evaluation.report import hitrate_figure

    report = EvaluationReport(
        as_of="2021-12-15", window_days=7, users=10, posts=5, scores=[score(n, 0.1 * i) for i, n in enumerate(NAMES)]
    )
    figure = hitrate_figure(report)
    renderer = FigureCanvasAgg(figure).get_renderer()
    axes = figure.axes[0]
    labels = [label for label in axes.get_xticklabels() + axes.get_yticklabels() if label.get_text()]
    boxes = [label.get_window_extent(renderer) for label in labels]
    assert {label.get_text() for label in labels} >= set(NAMES)
    overlapping = [
        (labels[i].get_text(), labels[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]
    assert overlapping == []


def test_breakdowns_show_users_per_bucket_and_say_what_they_group_by(tmp_path: Path) -> None:
    scores = [score("popular", 0.3), score("oracle", 0.6)]
    scores = [replace(s, by_group={"topic": {"movie": 0.3, "no like before T": 1.0}}) for s in scores]
    sizes = {"topic": {"movie": 812, "no like before T": 2}}
    report = EvaluationReport(
        as_of="2021-12-15",
        window_days=7,
        users=814,
        posts=5,
        scores=scores,
        group_sizes=sizes,
        calibration=[(0.1, 0.2)],
    )
    markdown = write_report(report, tmp_path).read_text()
    assert "| *users* | *812* | *2* |" in markdown
    assert "no favourite topic" in markdown and "A bucket of a few users is noise" in markdown
    assert "Calibration (calibration.png)" in markdown and "above the prediction" in markdown
    assert json.loads((tmp_path / "evaluation.json").read_text())["group_sizes"] == sizes


@pytest.mark.parametrize(
    ("figures", "text"),
    [
        ({"eval_users": 2772.0, "hitrate_at_5": 0.41234}, "eval_users=2772, hitrate_at_5=0.4123"),
        ({"auc": 0.5, "valid_rows": 120345.0}, "auc=0.5000, valid_rows=120345"),
        ({"logloss": float("nan")}, "logloss=nan"),
    ],
)
def test_counts_print_as_integers_and_rates_with_four_decimals(figures: dict[str, float], text: str) -> None:
    assert format_figures(figures) == text
