"""The nn feature's plumbing: the streamed reduction of the feed, the switch, and the lean install's fallback."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import polars as pl
import pytest

from batch.pipeline.nn_feature import NN_SCORE, last_views, nn_feature_enabled, warn_missing_torch_once
from common.columns import Col
from common.errors import ConfigError
from common.settings import load_settings
from postrec.cli import build_parser

T0 = datetime(2021, 12, 1)


def views(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    """(user, post, minutes after T0) rows."""
    return pl.DataFrame(
        {
            Col.TIMESTAMP: [T0 + timedelta(minutes=minutes) for _, _, minutes in rows],
            Col.USER_ID: [user for user, _, _ in rows],
            Col.POST_ID: [post for _, post, _ in rows],
        },
        schema={Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32, Col.POST_ID: pl.Int32},
    )


def keyed(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return sorted(frame.iter_rows())


def test_last_views_keeps_each_users_last_rows_before_each_cutoff() -> None:
    rows = views([(1, post, post) for post in range(1, 8)] + [(2, 9, 1), (2, 8, 30)])
    cutoffs = (T0 + timedelta(minutes=4), T0 + timedelta(minutes=20))

    kept = last_views(rows, cutoffs, length=2)

    # Before minute 4: posts 2, 3 of user 1 and post 9 of user 2; before minute 20: posts 6, 7 and post 9.
    assert keyed(kept.select(Col.USER_ID, Col.POST_ID)) == [(1, 2), (1, 3), (1, 6), (1, 7), (2, 9)]


def test_last_views_on_chunks_then_on_their_union_equals_one_pass() -> None:
    rows = views([(user, post, (7 * post + 3 * user) % 50) for user in range(1, 5) for post in range(1, 30)])
    cutoffs = (T0 + timedelta(minutes=17), T0 + timedelta(minutes=41))
    chunks = [last_views(rows.slice(start, 23), cutoffs, 3) for start in range(0, rows.height, 23)]

    assert keyed(last_views(pl.concat(chunks), cutoffs, 3)) == keyed(last_views(rows, cutoffs, 3))


def test_last_views_by_slices_of_users_keeps_the_same_rows() -> None:
    rows = views([(user, post, (7 * post + 3 * user) % 50) for user in range(1, 8) for post in range(1, 30)])
    cutoffs = (T0 + timedelta(minutes=17), T0 + timedelta(minutes=41))

    sliced = last_views(rows, cutoffs, 3, rows_per_part=40)  # 203 rows: 6 slices of users

    assert keyed(sliced) == keyed(last_views(rows, cutoffs, 3))
    assert sliced.height == 7 * 2 * 3  # every user has more than 3 rows before each cutoff, none shared


def test_without_torch_the_feature_is_off_and_said_once(monkeypatch, caplog) -> None:
    warn_missing_torch_once.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)  # what the lean install (EXTRAS=dev) looks like

    assert nn_feature_enabled(wanted=True) is False
    assert nn_feature_enabled(wanted=True) is False
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and NN_SCORE in warnings[0] and "EXTRAS=dev,dl" in warnings[0]
    warn_missing_torch_once.cache_clear()


def test_the_switch_is_off_when_asked_whatever_is_installed() -> None:
    pytest.importorskip("torch")
    assert nn_feature_enabled(wanted=True) is True
    assert nn_feature_enabled(wanted=False) is False


def test_the_nn_feature_flag_reaches_the_build_options_and_is_off_by_default() -> None:
    from batch.cli import _build_options

    parser, settings = build_parser(), load_settings()
    assert _build_options(parser.parse_args(["build", "--nn-feature"]), settings).nn_feature is True
    assert _build_options(parser.parse_args(["build", "--no-nn-feature"]), settings).nn_feature is False
    assert _build_options(parser.parse_args(["build"]), settings).nn_feature is False


def test_an_evaluation_builds_with_the_nn_feature_when_asked_or_ablated() -> None:
    from batch.cli import _evaluation_nn_feature
    from batch.evaluation.evaluate import EvaluateOptions, evaluation_build_options

    parser, settings = build_parser(), load_settings()
    assert _evaluation_nn_feature(parser.parse_args(["evaluate"])) is False
    assert _evaluation_nn_feature(parser.parse_args(["evaluate", "--nn-feature"])) is True
    assert _evaluation_nn_feature(parser.parse_args(["evaluate", "--nn-ablation"])) is True
    assert evaluation_build_options(settings, EvaluateOptions()).nn_feature is False
    assert evaluation_build_options(settings, EvaluateOptions(nn_feature=True)).nn_feature is True
    assert evaluation_build_options(settings, EvaluateOptions(nn_ablation=True)).nn_feature is True


def test_an_ablation_without_the_nn_feature_is_refused_with_both_flags_named() -> None:
    from batch.cli import _evaluation_nn_feature

    with pytest.raises(ConfigError, match=r"--nn-ablation.*--no-nn-feature"):
        _evaluation_nn_feature(build_parser().parse_args(["evaluate", "--nn-ablation", "--no-nn-feature"]))


def test_the_build_and_the_evaluation_import_without_torch() -> None:
    """The lean install imports them: torch is loaded only when the sequence model is trained."""
    code = "import sys, batch.pipeline.build, batch.evaluation.evaluate; print('torch' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "False"


def test_a_cutoffs_views_do_not_depend_on_the_other_cutoffs() -> None:
    """A rescore reads one cutoff (as_of); the build reads three: as_of's sequences must be the same."""
    rows = views([(1, post, 60 * post) for post in range(1, 30)])
    late = T0 + timedelta(minutes=60 * 30)
    alone = last_views(rows, (late,), 50, lookback=timedelta(hours=10))
    together = last_views(rows, (T0 + timedelta(hours=5), late), 50, lookback=timedelta(hours=10))

    at_late = together.filter((pl.col(Col.TIMESTAMP) < late) & (pl.col(Col.TIMESTAMP) >= late - timedelta(hours=10)))
    assert keyed(at_late) == keyed(alone) and alone.height == 10
