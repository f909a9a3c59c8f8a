"""The API's one exception handler: every error becomes a JSON :class:`~api.payloads.ErrorBody`, never a trace."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from api.metrics import Metrics
from api.payloads import ErrorBody
from common.errors import NoPublishedVersionError, PostrecError, StoreUnavailableError, UnknownUserError

log = logging.getLogger(__name__)

STATUS_OF: Final[dict[type[PostrecError], int]] = {
    UnknownUserError: 404,
    NoPublishedVersionError: 503,
    StoreUnavailableError: 503,
}

ErrorHandler = Callable[[Request[Any, Any, Any], Exception], Response[ErrorBody]]


def make_error_handler(metrics: Metrics) -> ErrorHandler:
    """The handler for :class:`Exception`, so it sees every error; each is counted in ``metrics`` by kind."""

    def handle_error(_request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
        metrics.count_error(type(exc).__name__)
        status, message = describe(exc)
        if status >= 500 and not isinstance(exc, PostrecError):
            log.error("unhandled error answered with %d", status, exc_info=exc)
        # Litestar's own headers stay: Allow on a 405, for one.
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return Response(ErrorBody(status=status, message=message), status_code=status, headers=headers)

    return handle_error


def describe(exc: Exception) -> tuple[int, str]:
    """The HTTP status and client-safe message of an exception."""
    if isinstance(exc, ValidationException):
        return 400, _validation_message(exc)
    if isinstance(exc, HTTPException):
        return exc.status_code, exc.detail
    if isinstance(exc, PostrecError):
        return STATUS_OF.get(type(exc), 500), str(exc)
    return 500, "internal error: the server logged the details"


def _validation_message(exc: ValidationException) -> str:
    """One part per invalid parameter, each naming it (Litestar lists them in ``extra``; a missing one it names in
    ``detail``)."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = [_problem(problem) for problem in problems if isinstance(problem, dict)]
    return "; ".join(parts) or exc.detail


def _problem(problem: dict[str, Any]) -> str:
    source, name = problem.get("source", "query"), problem.get("key", "?")
    source = getattr(source, "value", source)  # Litestar gives its ParamType enum: "query", not "ParamType.QUERY"
    return f"{source} parameter '{name}': {problem.get('message', 'invalid')}"
