"""Running the API on a production ASGI server (``postrec serve``).

Granian is the default because it measured faster and cheaper than uvicorn + uvloop + httptools on the 2-core box:
wrk at 32 connections, 2 workers each, three interleaved runs (shared machine, load average about 7), medians:
granian 2,930 req/s at 304 us of server CPU per request, uvicorn 2,150 req/s at 369 us; at 1 connection p50 was
0.49-0.65 ms against 0.58-0.77 ms. Its HTTP parsing and socket work run in Rust, off the Python thread. Granian's
single-threaded runtime and Rust task implementation measured no better, so its defaults stay.
``--server uvicorn`` remains for comparison (bench/api.sh with SERVER=uvicorn).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from litestar import Litestar

from common.errors import ConfigError
from common.logs import configure_logging
from common.settings import load_settings

log = logging.getLogger(__name__)

APP_FACTORY: Final = "api.server:create_worker_app"
SERVERS: Final = ("granian", "uvicorn")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What a reverse proxy would otherwise bound, for a server exposed without one.

    A client that opens connections and sends its request slowly (or never finishes it) holds a server slot each;
    about 1,200 of them made normal requests time out.

    Attributes:
        header_timeout_s: A connection whose request head has not fully arrived within this is closed. The API reads
            no request body (every route is a GET), so a slow body holds no handler; a proxy bounds it too.
        max_concurrency: Requests one worker process handles at once (granian's backpressure); more wait in the
            listen backlog instead of each taking memory and a task.
        backlog: Connections the kernel queues for the server to accept.
    """

    header_timeout_s: float = 5.0
    max_concurrency: int = 512
    backlog: int = 1024


def create_worker_app() -> Litestar:
    """The entry point of each server worker process: settings from the environment, logging, the app."""
    from api.app import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def serve(host: str, port: int, workers: int, server: str = "granian", limits: ConnectionLimits | None = None) -> None:
    """Serve the API until interrupted.

    Args:
        host: Address to bind.
        port: Port to bind.
        workers: Server processes; each holds its own copy of the live version's catalog.
        server: ``granian`` or ``uvicorn``.
        limits: Header timeout and connection caps (defaults when omitted).

    Raises:
        ConfigError: Unknown server, or uvicorn asked for but not installed.
    """
    limits = limits or ConnectionLimits()
    log.info(
        "serving on %s:%d: server=%s workers=%d header_timeout_s=%.1f max_concurrency=%d",
        host, port, server, workers, limits.header_timeout_s, limits.max_concurrency,
    )  # fmt: skip
    if server == "granian":
        _serve_granian(host, port, workers, limits)
    elif server == "uvicorn":
        _serve_uvicorn(host, port, workers, limits)
    else:
        raise ConfigError(f"unknown server {server!r}: choose one of {', '.join(SERVERS)}")


def _serve_granian(host: str, port: int, workers: int, limits: ConnectionLimits) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    Granian(
        APP_FACTORY,
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=int(limits.header_timeout_s * 1000)),
        backlog=limits.backlog,
        backpressure=limits.max_concurrency,
        websockets=False,
        log_access=False,
    ).serve()


def _serve_uvicorn(host: str, port: int, workers: int, limits: ConnectionLimits) -> None:
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("uvicorn is not installed: pip install uvicorn httptools, or use --server granian") from None
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        limit_concurrency=limits.max_concurrency * workers,  # uvicorn answers 503 past it; no header timeout
        backlog=limits.backlog,
        access_log=False,
        log_level="warning",
    )
