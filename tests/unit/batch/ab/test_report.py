"""A/B report pieces on hand-made data: the statistics, what counts as a hit, parsing the served log, the files."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from batch.ab.render import write_ab_report
from batch.ab.report import (
    SERVED_SCHEMA,
    AbReport,
    group_results,
    mark_hits,
    parse_entry,
    sample_ratio_checks,
)
from batch.ab.stats import sample_ratio_check, two_proportion_test, wilson_interval

T0 = datetime(2021, 12, 20, 10, 0)


@pytest.mark.parametrize(
    ("control", "test", "estimate", "low", "high", "z", "p"),
    [
        # Hand-computed: unpooled se sqrt(4/27), pooled se sqrt(1/6).
        ((2, 3), (1, 3), -1 / 3, -1.0877238, 0.4210572, -0.8164966, 0.4142162),
        ((500, 1000), (550, 1000), 0.05, 0.0062836, 0.0937164, 2.2388683, 0.0251645),
    ],
)
def test_two_proportion_test(control, test, estimate, low, high, z, p) -> None:
    diff = two_proportion_test(*control, *test)
    assert (diff.estimate, diff.low, diff.high, diff.z, diff.p_value) == pytest.approx(
        (estimate, low, high, z, p), abs=1e-6
    )


def test_equal_proportions_have_no_difference() -> None:
    diff = two_proportion_test(0, 5, 0, 7)
    assert (diff.estimate, diff.z, diff.p_value) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize(("hits", "total", "low", "high"), [(0, 10, 0.0, 0.2775328), (7, 10, 0.3967781, 0.8922087)])
def test_wilson_interval(hits: int, total: int, low: float, high: float) -> None:
    assert wilson_interval(hits, total) == pytest.approx((low, high), abs=1e-6)


@pytest.mark.parametrize(
    ("control", "test", "percent", "chi2", "p", "mismatch"),
    [
        (70, 30, 50, 16.0, 6.334248e-05, True),
        (700, 300, 50, 160.0, 1.13148e-36, True),
        (52, 48, 50, 0.16, 0.6891565, False),
        (700, 300, 70, 0.0, 1.0, False),
        (10, 1, 100, math.inf, 0.0, True),
    ],
)
def test_sample_ratio_mismatch(control: int, test: int, percent: int, chi2: float, p: float, mismatch: bool) -> None:
    check = sample_ratio_check("v1", control, test, percent)
    assert check.chi2 == pytest.approx(chi2)
    assert check.p_value == pytest.approx(p, rel=1e-5, abs=1e-40)
    assert check.mismatch is mismatch


def test_entry_time_is_the_request_time_in_utc_or_else_the_stream_clock() -> None:
    fields = {b"time": b"2021-12-20T13:00:00+03:00", b"user": b"7", b"group": b"test", b"version": b"v1"}
    row = parse_entry(b"1-0", {**fields, b"posts": b"5,9"})
    assert row == ("1-0", datetime(2021, 12, 20, 10, 0), 7, "test", "v1", [5, 9])
    untimed = parse_entry("1640000000000-3", {**fields, b"time": b"", b"posts": b""})
    assert untimed[1] == datetime(2021, 12, 20, 11, 33, 20) and untimed[5] == []


def served(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SERVED_SCHEMA, orient="row")


def likes(rows: list[tuple[datetime, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"timestamp": pl.Datetime("us"), "user_id": pl.Int32, "post_id": pl.Int32}, orient="row"
    )


@pytest.mark.parametrize(
    ("liked_after", "post", "hit"),
    [
        (timedelta(0), 2, True),  # at the serving moment
        (timedelta(minutes=59, seconds=59), 3, True),
        (timedelta(hours=1), 2, False),  # the hour is over
        (timedelta(seconds=-1), 2, False),  # liked before it was served
        (timedelta(minutes=5), 4, False),  # a post that was not in the response
    ],
)
def test_a_hit_is_a_like_of_a_served_post_within_the_hour(liked_after: timedelta, post: int, hit: bool) -> None:
    log = served([("1-0", T0, 7, "test", "v1", [2, 3])])
    marked = mark_hits(log, likes([(T0 + liked_after, 7, post)]))
    assert marked["hit"].to_list() == [hit]


def test_another_users_like_is_not_a_hit() -> None:
    marked = mark_hits(served([("1-0", T0, 7, "test", "v1", [2])]), likes([(T0, 8, 2)]))
    assert marked["hit"].to_list() == [False]


def hand_log() -> pl.DataFrame:
    """Control: user 1 hit on the second of two responses, user 2 none. Test: user 3 hit, users 4 and 5 not."""
    rows = [
        ("1-0", T0, 1, "control", "v1", [10]),
        ("2-0", T0, 1, "control", "v1", [11]),
        ("3-0", T0, 2, "control", "v1", [10]),
        ("4-0", T0, 3, "test", "v1", [10]),
        ("5-0", T0, 4, "test", "v1", [12]),
        ("6-0", T0, 5, "test", "v2", [12]),
    ]
    return mark_hits(served(rows), likes([(T0, 1, 11), (T0, 3, 10)]))


def test_group_figures_count_users_and_responses() -> None:
    control, test = group_results(hand_log())
    assert (control.users, control.hit_users, control.hitrate, control.responses, control.hit_responses) == (
        2,
        1,
        0.5,
        3,
        1,
    )
    assert (test.users, test.hit_users, test.responses, test.hit_responses) == (3, 1, 3, 1)
    assert test.hitrate == pytest.approx(1 / 3)


def test_sample_ratio_is_checked_per_version_with_its_own_split() -> None:
    checks = sample_ratio_checks(hand_log(), {"v1": 50, "v2": 100})
    assert [(c.version, c.control_users, c.test_users) for c in checks] == [("v1", 2, 2), ("v2", 0, 1)]
    assert [c.mismatch for c in checks] == [False, True]


def test_report_files(tmp_path: Path) -> None:
    marked = hand_log()
    groups = group_results(marked)
    empty_test = groups[1].__class__("test", 0, 0, math.nan, math.nan, math.nan, 0, 0)
    report = AbReport(
        since="2021-12-20T00:00:00",
        until="2021-12-21T00:00:00",
        hit_window_minutes=60,
        groups=[groups[0], empty_test],
        difference=two_proportion_test(1, 2, 0, 0),
        sample_ratio=[sample_ratio_check("v1", 70, 30, 50)],
        notes=["version v0 has no metadata left"],
    )
    markdown = write_ab_report(report, tmp_path).read_text()
    assert "| control | 2 | 1 | 0.5000 |" in markdown
    assert "Sample-ratio mismatch" in markdown and "version v0 has no metadata left" in markdown
    data = json.loads((tmp_path / "ab_report.json").read_text())
    assert data["groups"][1]["hitrate"] is None and data["sample_ratio_mismatch"] is True
    assert (tmp_path / "ab_hitrate.png").read_bytes().startswith(b"\x89PNG")
