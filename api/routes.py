"""The HTTP routes: thin handlers over the recommender, the watcher and the metrics of one app.

No ``from __future__ import annotations`` here: the handlers' annotations carry the app's ``limit`` bound (K), so
they must be evaluated where the handlers are defined, inside their factories.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from litestar import MediaType, Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.response.base import ASGIResponse

from api.metrics import CONTENT_TYPE, Metrics
from api.payloads import ErrorBody, Health
from api.query import check_query, parse_time
from api.serving import Recommender
from api.store import Store
from api.versions import VersionWatcher
from common.errors import StoreUnavailableError
from common.payloads import Recommendations

DEFAULT_LIMIT: Final = 5
MAX_USER_ID: Final = 2**53 - 1  # exact as a JSON number (the schema's maximum)
RECOMMENDATIONS_DOC: Final = (
    "The next posts for a user: the first `limit` posts of the user's precomputed list in the live version that the "
    "user has not liked at request time, in list order, topped up from the version's popular list when the list "
    "runs short. Lists are precomputed as of the version's `as_of`, so `time` does not change the ranking: it is "
    "validated and recorded in the served log. `exp_group` is the user's A/B group under the version's split."
)
TIME_DOC: Final = (
    "ISO 8601 time of the request (a date-time, or a date read as its midnight), recorded in the served log. Lists "
    "are precomputed as of the version's as_of, so it does not change the ranking."
)


@dataclass(frozen=True, slots=True)
class ApiParts:
    """What the handlers of one app work with."""

    recommender: Recommender
    watcher: VersionWatcher
    store: Store
    metrics: Metrics


def build_route_handlers(parts: ApiParts, max_limit: int) -> list[HTTPRouteHandler]:
    """The app's route handlers, bound to its parts; ``limit`` is validated against ``max_limit`` (K)."""
    return [_recommendations_handler(parts.recommender, max_limit), _health_handler(parts), _metrics_handler(parts)]


def _error_spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description)


def _recommendations_handler(recommender: Recommender, max_limit: int) -> HTTPRouteHandler:
    @get(
        "/post/recommendations/",
        summary="Next posts for a user",
        description=RECOMMENDATIONS_DOC,
        responses={
            200: ResponseSpec(data_container=Recommendations, description="The user's next posts"),
            400: _error_spec("A parameter is missing or malformed; the message names it"),
            404: _error_spec("The user is not in the live version's user set"),
            503: _error_spec("Nothing is published yet (run `postrec build`) or Redis is unreachable"),
        },
    )
    async def recommendations(
        request: Request[Any, Any, Any],
        # Named as the checker names it, so errors say "id"; bounded to what a JSON number holds exactly.
        id: Annotated[int, Parameter(ge=0, le=MAX_USER_ID, description="The user's id.")],
        limit: Annotated[int, Parameter(ge=1, le=max_limit, description="How many posts to return.")] = DEFAULT_LIMIT,
        time: Annotated[str | None, Parameter(description=TIME_DOC, schema_extra={"format": "date-time"})] = None,
    ) -> ASGIResponse:
        check_query(request.query_params)
        body = await recommender.recommend(id, limit, parse_time(time))
        # The body is already JSON: the low-level response skips Litestar's serialisation and header merging.
        return ASGIResponse(body=body, media_type=MediaType.JSON)

    return recommendations


def _health_handler(parts: ApiParts) -> HTTPRouteHandler:
    @get(
        "/health",
        summary="Live version, Redis reachability and the version watcher",
        responses={
            503: ResponseSpec(
                data_container=Health, description="No live version, Redis failing, or a stale version watcher"
            )
        },
    )
    async def health() -> Response[Health]:
        live, watcher = parts.watcher.live, parts.watcher.state()
        reachable = await parts.store.ping()
        redis_version = await _redis_version(parts.store) if reachable else None
        version = None if live is None else live.version
        # Redis names a version the watcher fails to load: what is served is not what was published.
        not_loaded = watcher.error is not None and redis_version not in (None, version)
        status = _health_status(live is not None and reachable, watcher.stale or not_loaded)
        report = Health(
            status=status,
            version=version,
            version_age_s=None if live is None else live.age_s(datetime.now(UTC)),
            redis=reachable,
            redis_version=redis_version,
            watcher_error=watcher.error,
            watcher_last_ok_s=watcher.seconds_since_ok,
        )
        return Response(report, status_code=200 if status == "ok" else 503)

    return health


def _health_status(serving: bool, stale: bool) -> str:
    if stale:
        return "stale"
    return "ok" if serving else "unavailable"


async def _redis_version(store: Store) -> str | None:
    try:
        return await store.current_version()
    except StoreUnavailableError:
        return None


def _metrics_handler(parts: ApiParts) -> HTTPRouteHandler:
    @get("/metrics", summary="Prometheus metrics of this server process", media_type=CONTENT_TYPE)
    async def metrics() -> str:
        live = parts.watcher.live
        age = None if live is None else live.age_s(datetime.now(UTC))
        return parts.metrics.render(None if live is None else live.version, age)

    return metrics
