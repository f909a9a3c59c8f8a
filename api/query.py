"""Strict reading of the recommendation query: what Litestar's lenient coercion lets through is refused here.

Litestar (msgspec) reads ``id=1e3`` as 1000, ``id=200.0`` and ``limit=1e1`` as whole numbers, a repeated parameter
as its last value, and a bare number as an epoch ``time``. The contract is narrower: ids and limits are digits,
each parameter comes once, and ``time`` is ISO 8601 (a date, or a date and time). Refusals name the parameter and
never echo its value (a client may send megabytes of digits).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from litestar.datastructures import MultiDict
from litestar.exceptions import ValidationException

SINGLE: Final = frozenset(("id", "limit", "time"))
WHOLE_NUMBERS: Final = frozenset(("id", "limit"))
DIGITS: Final = re.compile(r"[0-9]{1,16}")  # 2**53 - 1, the largest id, has 16
MAX_TIME_CHARS: Final = 64


def problem(name: str, message: str) -> dict[str, str]:
    """One invalid parameter, in the shape Litestar's own validation uses (``api.errors`` renders it)."""
    return {"source": "query", "key": name, "message": message}


def check_query(params: MultiDict[Any]) -> None:
    """Refuse repeated parameters and whole numbers not written as plain digits (one pass: this runs per request).

    Raises:
        ValidationException: Listing every problem, each naming its parameter.
    """
    counts: dict[str, int] = {}
    malformed: list[str] = []
    repeated = False
    for name, value in params.items():
        if name in SINGLE:
            repeated |= name in counts
            counts[name] = counts.get(name, 0) + 1
            if name in WHOLE_NUMBERS and not DIGITS.fullmatch(value):
                malformed.append(name)
    if not (malformed or repeated):
        return
    problems = [problem(name, f"given {count} times: give it once") for name, count in counts.items() if count > 1]
    problems += [
        problem(name, "must be a whole number written in digits (at most 16), such as 200")
        for name in malformed
        if counts[name] == 1
    ]
    raise ValidationException(detail="invalid query", extra=problems)


def parse_time(text: str | None) -> datetime | None:
    """The request's ``time``: ISO 8601, a date-time (``2021-12-29T23:51:00``, with an optional offset or ``Z``) or a
    date (``2021-12-30``, read as its midnight).

    Raises:
        ValidationException: ``text`` is not such a date (a bare number, such as epoch seconds, is refused).
    """
    if text is None:
        return None
    try:
        if len(text) > MAX_TIME_CHARS or "-" not in text.lstrip("+-"):
            raise ValueError(text)
        return datetime.fromisoformat(text)
    except ValueError:
        message = "must be an ISO 8601 date or date-time, such as 2021-12-30 or 2021-12-29T23:51:00"
        raise ValidationException(detail="invalid time", extra=[problem("time", message)]) from None
