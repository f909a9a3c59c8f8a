"""The evaluation report: a JSON with every figure, a Markdown summary and PNG plots under ``reports/``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

# Figures are built with the object API (no pyplot): no global backend state, nothing needs a display.
from matplotlib.figure import Figure


@dataclass(frozen=True, slots=True)
class RecommenderScore:
    """Every figure of one recommender over the evaluated users."""

    name: str
    hitrate: float
    hitrate_low: float
    hitrate_high: float
    precision: float
    ndcg: float
    coverage: float
    gap_closure: float
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """One evaluation run: its setting, its recommenders, and model diagnostics.

    ``differences``: paired differences of hitrate@5 by name (``"test - control"``, ``"control - best baseline"``,
    ``"test - test_without_nn"``; see :mod:`batch.evaluation.paired`): the mean of each user's difference and its
    95% bootstrap interval.
    """

    as_of: str
    window_days: float
    users: int
    posts: int
    scores: list[RecommenderScore]
    group_sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    feature_importance: dict[str, float] = field(default_factory=dict)
    calibration: list[tuple[float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    protocol: str = "time"
    differences: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def write_report(report: EvaluationReport, out_dir: Path, previous: Path | None = None) -> Path:
    """Write ``evaluation.json``, ``evaluation.md`` and the PNG plots into ``out_dir``; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    last = _load_previous(previous)  # before the JSON below replaces it, when it is the same file
    (out_dir / "evaluation.json").write_text(json.dumps(asdict(report), indent=2, default=_nan_safe))
    _plot_hitrates(report, out_dir / "hitrate.png")
    _plot_by_group(report, "activity", out_dir / "hitrate_by_activity.png")
    if report.feature_importance:
        _plot_importance(report.feature_importance, out_dir / "feature_importance.png")
    if report.calibration:
        _plot_calibration(report.calibration, out_dir / "calibration.png")
    markdown = out_dir / "evaluation.md"
    markdown.write_text(render_markdown(report, last))
    return markdown


def _nan_safe(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def _load_previous(path: Path | None) -> dict[str, float]:
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {score["name"]: float(score["hitrate"]) for score in data.get("scores", [])}


def render_markdown(report: EvaluationReport, previous: dict[str, float]) -> str:
    """The human summary: one table of recommenders, then per-group hitrates."""
    lines = [
        f"# Evaluation as of {report.as_of}, protocol {report.protocol}, window {report.window_days:g} days",
        "",
        f"{report.users} users with a like in their window, {report.posts} posts.",
        "",
        "| recommender | hitrate@5 | 95% interval | precision@5 | NDCG@5 | coverage | gap closure | vs last run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_score_row(score, previous.get(score.name)) for score in report.scores]
    lines += _difference_section(report.differences)
    lines += _group_sections(report)
    lines += ["", *[f"- {note}" for note in report.notes]] if report.notes else []
    lines += ["", CALIBRATION_NOTE] if report.calibration else []
    plots = ["hitrate.png", "hitrate_by_activity.png", "feature_importance.png", "calibration.png"]
    lines += ["", *[f"![{name}]({name})" for name in plots]]
    return "\n".join(lines) + "\n"


def _score_row(score: RecommenderScore, last: float | None) -> str:
    delta = "" if last is None else f"{score.hitrate - last:+.4f}"
    gap = "" if math.isnan(score.gap_closure) else f"{score.gap_closure:.3f}"
    return (
        f"| {score.name} | {score.hitrate:.4f} | {score.hitrate_low:.4f}..{score.hitrate_high:.4f} | "
        f"{score.precision:.4f} | {score.ndcg:.4f} | {score.coverage:.3f} | {gap} | {delta} |"
    )


def _difference_section(differences: dict[str, tuple[float, float, float]]) -> list[str]:
    if not differences:
        return []
    lines = ["", "## Paired differences of hitrate@5", "", "| difference | mean | 95% interval |", "|---|---|---|"]
    rows = [f"| {name} | {mean:+.4f} | {low:+.4f}..{high:+.4f} |" for name, (mean, low, high) in differences.items()]
    return [*lines, *rows, "", "Each user's hit in the first row minus theirs in the second, over the same users."]


# What each breakdown groups users by, printed under its table.
GROUP_NOTES: Final = {
    "activity": "Users by their views before T.",
    "exp_group": "Users by their A/B group; every recommender is evaluated on every user, whatever the group.",
    "last_like": (
        "Users by the days from their latest like to T (under the per-user protocol T is the end of the data, so an"
        " old bucket holds users whose held-out views lie in an old burst; under the time cut, users back after a"
        " gap)."
    ),
    "topic": (
        "Users by the topic of most of their likes before T; a user with no like before T has no favourite topic"
        " and no history to rank from. A bucket of a few users is noise: a hitrate there is a handful of hits."
    ),
}


def _group_sections(report: EvaluationReport) -> list[str]:
    lines: list[str] = []
    kinds = sorted({kind for score in report.scores for kind in score.by_group})
    for kind in kinds:
        groups = sorted({g for score in report.scores for g in score.by_group.get(kind, {})})
        lines += ["", f"## Hitrate@5 by {kind}", "", "| recommender | " + " | ".join(groups) + " |"]
        lines.append("|---" * (len(groups) + 1) + "|")
        sizes = report.group_sizes.get(kind)
        if sizes:
            lines.append("| *users* | " + " | ".join(f"*{sizes.get(g, 0)}*" for g in groups) + " |")
        for score in report.scores:
            values = score.by_group.get(kind, {})
            lines.append(f"| {score.name} | " + " | ".join(f"{values.get(g, math.nan):.4f}" for g in groups) + " |")
        if kind in GROUP_NOTES:
            lines += ["", GROUP_NOTES[kind]]
    return lines


CALIBRATION_NOTE: Final = (
    "Calibration (calibration.png): the control model's validation rows (views shown in the validation window) in"
    " ten deciles of predicted like probability, mean prediction against the observed like rate. The observed rate"
    " sits above the prediction by design: the model is trained on shown views plus never-shown posts as"
    " negatives (unseen_per_positive per like), so its probabilities are those of that diluted mix, and the like"
    " rate also rises over time. Ranking reads only the order of the predictions, which the rising curve shows."
)


def _plot_hitrates(report: EvaluationReport, path: Path) -> None:
    _save(hitrate_figure(report), path)


def hitrate_figure(report: EvaluationReport) -> Figure:
    """Hitrate@5 per recommender as horizontal bars: names on the y axis, one a line, never overlapping."""
    names = [score.name for score in report.scores]
    rates = [score.hitrate for score in report.scores]
    errors = [
        [score.hitrate - score.hitrate_low for score in report.scores],
        [score.hitrate_high - score.hitrate for score in report.scores],
    ]
    fig = Figure(figsize=(8, 1.2 + 0.4 * len(names)))
    ax = fig.subplots()
    ax.barh(names, rates, xerr=errors, capsize=3, color="#4C72B0")
    for row, rate in enumerate(rates):
        ax.annotate(f"{rate:.3f}", (rate, row), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("hitrate@5 (95% bootstrap interval)")
    ax.set_title(f"Hitrate@5 as of {report.as_of}, {report.users} users")
    ax.margins(x=0.15)
    fig.tight_layout()
    return fig


def _plot_by_group(report: EvaluationReport, kind: str, path: Path) -> None:
    groups = sorted({g for score in report.scores for g in score.by_group.get(kind, {})})
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    width = 0.8 / max(len(report.scores), 1)
    for i, score in enumerate(report.scores):
        values = [score.by_group.get(kind, {}).get(g, 0.0) for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], values, width=width, label=score.name)
    sizes = report.group_sizes.get(kind, {})
    labels = [f"{g}\n{sizes[g]} users" if g in sizes else g for g in groups]
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], labels, fontsize=8)
    ax.set_ylabel("hitrate@5")
    ax.set_title(f"Hitrate@5 by {kind}")
    ax.legend(fontsize=7)
    _save(fig, path)


def _plot_importance(importance: dict[str, float], path: Path, top: int = 25) -> None:
    ranked = sorted(importance.items(), key=lambda item: item[1])[-top:]
    fig = Figure(figsize=(7, max(3.0, 0.3 * len(ranked))))
    ax = fig.subplots()
    ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="#55A868")
    ax.set_title("Feature importance (control)")
    _save(fig, path)


def _plot_calibration(points: list[tuple[float, float]], path: Path) -> None:
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    predicted, observed = zip(*points, strict=True)
    ax.plot(predicted, observed, marker="o", label="model")
    top = max(max(predicted), max(observed))
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    ax.set_xlabel("mean predicted like probability (decile)")
    ax.set_ylabel("observed like rate")
    ax.set_title("Calibration of control, validation window", fontsize=10)
    ax.legend()
    _save(fig, path)


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
