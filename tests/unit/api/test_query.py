"""The strict query rules, on hand-made query dicts."""

from __future__ import annotations

from datetime import datetime

import pytest
from litestar.datastructures import MultiDict
from litestar.exceptions import ValidationException

from api.query import check_query, parse_time


@pytest.mark.parametrize("pairs", [[("id", "200")], [("id", "200"), ("limit", "5"), ("time", "2021-12-30")], []])
def test_plain_queries_pass(pairs: list[tuple[str, str]]) -> None:
    check_query(MultiDict(pairs))


@pytest.mark.parametrize(
    ("pairs", "names"),
    [
        ([("id", "1e3")], ["id"]),
        ([("id", "200"), ("id", "201")], ["id"]),
        ([("id", "200.0"), ("limit", "1e1")], ["id", "limit"]),
        ([("id", "9" * 17)], ["id"]),
        ([("id", "200"), ("time", "a"), ("time", "b")], ["time"]),
    ],
)
def test_every_problem_is_listed_by_name(pairs: list[tuple[str, str]], names: list[str]) -> None:
    with pytest.raises(ValidationException) as raised:
        check_query(MultiDict(pairs))
    assert isinstance(raised.value.extra, list)
    assert [problem["key"] for problem in raised.value.extra] == names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("2021-12-30", datetime(2021, 12, 30)),
        ("2021-12-29T23:51:00", datetime(2021, 12, 29, 23, 51)),
        ("2021-12-29 23:51:00", datetime(2021, 12, 29, 23, 51)),
    ],
)
def test_time_is_iso_8601_date_or_date_time(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["1638352800", "0.0", "yesterday", "2021-13-01", "2021-12-30" + "0" * 100])
def test_time_refuses_numbers_and_non_dates(text: str) -> None:
    with pytest.raises(ValidationException):
        parse_time(text)
