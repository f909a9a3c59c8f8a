"""Pure parts of the likes sync: time windows and the watermark's text form."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from worker.likes import format_watermark, split_windows

T0 = datetime(2021, 10, 1)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (T0, [(T0, None)]),
        (T0 + DAY / 2, [(T0, None)]),
        (T0 + DAY, [(T0, T0 + DAY), (T0 + DAY, None)]),
        (T0 + 2.5 * DAY, [(T0, T0 + DAY), (T0 + DAY, T0 + 2 * DAY), (T0 + 2 * DAY, None)]),
    ],
)
def test_windows_cover_the_range_and_end_open(last: datetime, expected: list) -> None:
    assert list(split_windows(T0, last, DAY)) == expected


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (datetime(2021, 10, 1, 6, 0, 0), datetime(2021, 10, 1, 6, 0, 0, 1)),
        (datetime(2021, 10, 1, 6, 0, 0, 999999), datetime(2021, 10, 1, 6, 0, 1)),
        (datetime(2021, 9, 30, 23, 59, 59), datetime(2021, 10, 1)),
    ],
)
def test_watermark_text_orders_like_time(earlier: datetime, later: datetime) -> None:
    assert format_watermark(earlier) < format_watermark(later)
    assert datetime.fromisoformat(format_watermark(earlier)) == earlier
