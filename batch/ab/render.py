"""The A/B report's files: ``ab_report.json`` with every figure, ``ab_report.md`` for people, ``ab_hitrate.png``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Final

# Figures are built with the object API (no pyplot): no global backend state, nothing needs a display.
from matplotlib.figure import Figure

from batch.ab.report import AbReport, GroupResult
from batch.ab.stats import SRM_ALPHA, SampleRatioCheck

JSON_NAME: Final = "ab_report.json"
MARKDOWN_NAME: Final = "ab_report.md"
PLOT_NAME: Final = "ab_hitrate.png"


def write_ab_report(report: AbReport, out_dir: Path) -> Path:
    """Write the JSON, Markdown and PNG into ``out_dir``; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {**asdict(report), "sample_ratio_mismatch": report.sample_ratio_mismatch}
    (out_dir / JSON_NAME).write_text(json.dumps(_without_nan(figures), indent=2, allow_nan=False))
    plot_hitrates(report, out_dir / PLOT_NAME)
    markdown = out_dir / MARKDOWN_NAME
    markdown.write_text(render_markdown(report))
    return markdown


def _without_nan(value: object) -> object:
    """NaN (a figure of a group nobody was served in) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value


def render_markdown(report: AbReport) -> str:
    """The human summary: definitions, the group table, the difference, the sample-ratio checks."""
    minutes = f"{report.hit_window_minutes:g}"
    lines = [
        f"# A/B report: served {report.since} .. {report.until}",
        "",
        f"A served response is a **hit** when its user liked any of its posts within {minutes} minutes after it was "
        "served. A user is a hit when any of the user's responses in the window was; a group's **hitrate** is the "
        "share of its users who are hits.",
        "",
        "| group | users | hit users | hitrate | 95% interval | responses | hit responses | hits per response |",
        "|---|---|---|---|---|---|---|---|",
        *(_group_row(group) for group in report.groups),
        "",
        _difference_line(report),
        "",
        "## Sample ratio",
        "",
        "| version | control % | control users | test users | observed control % | chi-square | p-value | mismatch |",
        "|---|---|---|---|---|---|---|---|",
        *(_ratio_row(check) for check in report.sample_ratio),
        *_mismatch_warning(report),
        *(["", *[f"- {note}" for note in report.notes]] if report.notes else []),
        "",
        f"![hitrate per group]({PLOT_NAME})",
    ]
    return "\n".join(lines) + "\n"


def _group_row(group: GroupResult) -> str:
    per_response = group.hit_responses / group.responses if group.responses else math.nan
    return (
        f"| {group.group} | {group.users} | {group.hit_users} | {group.hitrate:.4f} | "
        f"{group.hitrate_low:.4f}..{group.hitrate_high:.4f} | {group.responses} | {group.hit_responses} | "
        f"{per_response:.4f} |"
    )


def _difference_line(report: AbReport) -> str:
    diff = report.difference
    return (
        f"**test - control**: {diff.estimate:+.4f} (95% interval {diff.low:+.4f}..{diff.high:+.4f}, normal "
        f"approximation), z = {diff.z:.3f}, two-sided p = {diff.p_value:.4g} (two-proportion z-test)."
    )


def _ratio_row(check: SampleRatioCheck) -> str:
    total = check.control_users + check.test_users
    observed = 100 * check.control_users / total if total else math.nan
    flag = "**yes**" if check.mismatch else "no"
    return (
        f"| {check.version} | {check.control_percent} | {check.control_users} | {check.test_users} | "
        f"{observed:.1f} | {check.chi2:.3f} | {check.p_value:.3g} | {flag} |"
    )


def _mismatch_warning(report: AbReport) -> list[str]:
    flagged = [check.version for check in report.sample_ratio if check.mismatch]
    if not flagged:
        return []
    return [
        "",
        f"**Sample-ratio mismatch (p < {SRM_ALPHA:g}) in version {', '.join(flagged)}**: the groups' sizes do not "
        "fit the published split, so the groups are not comparable. Find why users are lost or moved (salt, "
        "percent or logging changed mid-experiment) before reading the difference.",
    ]


def plot_hitrates(report: AbReport, path: Path) -> None:
    """Bar chart of each group's hitrate with its 95% interval."""
    groups = [group for group in report.groups if group.users]
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    rates = [group.hitrate for group in groups]
    errors = [[g.hitrate - g.hitrate_low for g in groups], [g.hitrate_high - g.hitrate for g in groups]]
    ax.bar([g.group for g in groups], rates, yerr=errors, capsize=6, color=["#4C72B0", "#DD8452"][: len(groups)])
    for x, group in enumerate(groups):  # inside the bar, clear of the interval's whiskers
        label = f"{group.hitrate:.3f}\n{group.users} users"
        ax.text(x, group.hitrate / 2, label, ha="center", va="center", color="white")
    ax.set_ylabel("hitrate (95% Wilson interval)")
    ax.set_title(f"Hitrate per group, p = {report.difference.p_value:.3g}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
