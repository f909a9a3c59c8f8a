"""Every exception maps to a status and a client-safe message."""

from __future__ import annotations

import pytest
from litestar.exceptions import NotFoundException, ValidationException

from api.errors import describe
from common.errors import ConfigError, NoPublishedVersionError, StoreUnavailableError, UnknownUserError


@pytest.mark.parametrize(
    ("exc", "status", "message"),
    [
        (UnknownUserError("user 5 is not in the user set of version v1"), 404, "user 5 is not in"),
        (NoPublishedVersionError(), 503, "run `postrec build`"),
        (StoreUnavailableError("Redis is unreachable"), 503, "Redis is unreachable"),
        (ConfigError("POSTREC_K must be in 1..10000"), 500, "POSTREC_K"),
        (NotFoundException(), 404, "Not Found"),
        (KeyError("secret internals"), 500, "internal error: the server logged the details"),
    ],
)
def test_status_and_message(exc: Exception, status: int, message: str) -> None:
    got_status, got_message = describe(exc)
    assert got_status == status
    assert message in got_message
    assert "secret internals" not in got_message


def test_validation_errors_name_each_parameter() -> None:
    exc = ValidationException(
        detail="Validation failed",
        extra=[
            {"message": "Expected `int`, got `str`", "key": "id", "source": "query"},
            {"message": "Expected `int` >= 1", "key": "limit", "source": "query"},
        ],
    )
    assert describe(exc) == (
        400,
        "query parameter 'id': Expected `int`, got `str`; query parameter 'limit': Expected `int` >= 1",
    )


def test_validation_error_without_details_keeps_litestars_message() -> None:
    exc = ValidationException(detail="Missing required query parameter 'id' for path /post/recommendations")
    assert describe(exc) == (400, "Missing required query parameter 'id' for path /post/recommendations")
