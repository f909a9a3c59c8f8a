"""``postrec ab-report`` against the real Redis (a hand-made served log) and PostgreSQL (hand-made likes)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batch.ab.report import build_ab_report, read_served
from common.keys import KeyLayout
from common.payloads import VersionMeta
from common.settings import Settings
from postrec.cli import main

SINCE, UNTIL = datetime(2021, 12, 20, 8, 0), datetime(2021, 12, 21, 0, 0)
BASE_MS = 1640001600000 - 10  # 2021-12-20 11:59:59.990 UTC: entry ids start here and go up by 1 ms

# (time field, user, group, posts); an empty time means "the stream id's clock".
SERVED = [
    ("2021-12-20T10:00:00", 200, "control", "1,2,3"),  # liked 2 at 10:30: hit
    ("2021-12-20T10:00:00", 201, "control", "1,2"),  # liked 1 exactly an hour later, 3 was not shown: no hit
    ("2021-12-20T09:00:00", 202, "control", "4"),  # no like
    ("", 202, "control", "5"),  # served about 12:00 (stream clock), liked 5 at 12:59: hit
    ("2021-12-20T13:00:00+03:00", 300, "test", "1"),  # 10:00 UTC; liked 1 a minute before it was served: no hit
    ("2021-12-20T10:00:00", 301, "test", "6,7"),  # liked 7 at 10:01: hit
    ("2021-12-20T07:00:00", 302, "test", "8"),  # before --since: left out, though liked at 07:30
    ("2021-12-20T10:00:00", 302, "test", "8"),  # liked 8 at 11:30: too late
    ("2021-12-21T10:00:00", 303, "test", "9"),  # after --until: left out, though liked
]
FEED = [
    ("2021-12-20 10:30:00", 200, 2, "like"),
    ("2021-12-20 11:00:00", 201, 1, "like"),
    ("2021-12-20 10:10:00", 201, 3, "like"),
    ("2021-12-20 10:05:00", 201, 2, "view"),
    ("2021-12-20 12:59:00", 202, 5, "like"),
    ("2021-12-20 09:59:00", 300, 1, "like"),
    ("2021-12-20 10:01:00", 301, 7, "like"),
    ("2021-12-20 07:30:00", 302, 8, "like"),
    ("2021-12-20 11:30:00", 302, 8, "like"),
    ("2021-12-21 10:10:00", 303, 9, "like"),
]


def publish_meta(client: redis.Redis, keys: KeyLayout, version: str, control_percent: int) -> None:
    meta = VersionMeta(
        version=version,
        as_of="2021-12-20T00:00:00",
        created_at="2021-12-20T00:00:00",
        models={"control": "catboost", "test": "catboost+embeddings"},
        salt="s",
        control_percent=control_percent,
        k=200,
        users=6,
        posts=9,
    )
    client.hset(keys.meta(version), mapping=meta.to_hash())


def write_served(
    client: redis.Redis, keys: KeyLayout, rows: list[tuple[str, int, str, str]], version: str, first_ms: int = BASE_MS
) -> None:
    for offset, (time, user, group, posts) in enumerate(rows):
        fields = {"time": time, "user": user, "group": group, "version": version, "posts": posts}
        client.xadd(keys.served, fields, id=f"{first_ms + offset}-0")


def insert_feed(engine: Engine, rows: list[tuple[str, int, int, str]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO feed_data VALUES (:t, :u, :p, :a, 0)"),
            [dict(zip("tupa", row, strict=True)) for row in rows],
        )


def test_report_matches_the_hand_computed_figures(redis_client: redis.Redis, keys: KeyLayout, engine: Engine) -> None:
    publish_meta(redis_client, keys, "v1", 50)
    write_served(redis_client, keys, SERVED, "v1")
    insert_feed(engine, FEED)
    report = build_ab_report(redis_client, engine, keys, SINCE, UNTIL, default_control_percent=50)
    control, test = report.groups
    assert (control.users, control.hit_users, control.responses, control.hit_responses) == (3, 2, 4, 2)
    assert (test.users, test.hit_users, test.responses, test.hit_responses) == (3, 1, 3, 1)
    assert (control.hitrate, test.hitrate) == pytest.approx((2 / 3, 1 / 3))
    diff = report.difference  # hand-computed: unpooled se sqrt(4/27), pooled se sqrt(1/6)
    assert (diff.estimate, diff.low, diff.high) == pytest.approx((-1 / 3, -1.0877238, 0.4210572), abs=1e-6)
    assert (diff.z, diff.p_value) == pytest.approx((-0.8164966, 0.4142162), abs=1e-6)
    [check] = report.sample_ratio
    assert (check.version, check.control_users, check.test_users, check.chi2, check.mismatch) == ("v1", 3, 3, 0, False)
    assert report.notes == []


def test_the_served_log_is_read_in_pages(redis_client: redis.Redis, keys: KeyLayout) -> None:
    write_served(redis_client, keys, SERVED, "v1")
    log = read_served(redis_client, keys, datetime(2000, 1, 1), datetime(2100, 1, 1), page=2)
    assert log["user_id"].to_list() == [row[1] for row in SERVED]
    assert log["entry"].n_unique() == len(SERVED)


def test_cli_flags_a_70_30_split_under_50_percent(
    redis_client: redis.Redis,
    keys: KeyLayout,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish_meta(redis_client, keys, "v2", 50)
    rows = [("2021-12-20T10:00:00", 1000 + user, "control" if user < 70 else "test", "1") for user in range(100)]
    write_served(redis_client, keys, rows, "v2")
    write_served(
        redis_client, keys, [("", 5000, "test", "")], "gone", first_ms=BASE_MS + 100
    )  # a version whose metadata was deleted
    insert_feed(engine, [("2021-12-20 10:10:00", 1000, 1, "like"), ("2021-12-20 10:10:00", 1099, 1, "like")])
    for name, value in {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}.items():
        monkeypatch.setenv(f"POSTREC_{name}", value)
    monkeypatch.setenv("POSTREC_PREFIX", keys.prefix)
    monkeypatch.setenv("POSTREC_CONTROL_PERCENT", "50")
    out = tmp_path / "ab"
    assert (
        main(["ab-report", "--since", "2021-12-20T00:00:00", "--until", "2021-12-21T00:00:00", "--out", str(out)]) == 0
    )
    data = json.loads((out / "ab_report.json").read_text())
    checks = {check["version"]: check for check in data["sample_ratio"]}
    assert (checks["v2"]["control_users"], checks["v2"]["test_users"], checks["v2"]["chi2"]) == (70, 30, 16.0)
    assert checks["v2"]["p_value"] == pytest.approx(6.334248e-05) and checks["v2"]["mismatch"] is True
    assert data["sample_ratio_mismatch"] is True
    assert [g["hit_users"] for g in data["groups"]] == [1, 1]
    assert "Sample-ratio mismatch" in (out / "ab_report.md").read_text()
    assert "gone has no metadata" in " ".join(data["notes"])
    assert (out / "ab_hitrate.png").read_bytes().startswith(b"\x89PNG")


def test_an_empty_window_says_what_to_do(
    redis_client: redis.Redis,
    keys: KeyLayout,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_served(redis_client, keys, SERVED[:1], "v1")  # served before the window asked for
    monkeypatch.setenv("POSTREC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("POSTREC_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("POSTREC_PREFIX", keys.prefix)
    assert main(["ab-report", "--since", "2021-12-21T00:00:00"]) == 2
    assert "no served responses between 2021-12-21 00:00:00 and" in capsys.readouterr().err
