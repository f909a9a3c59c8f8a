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
from typing import Final

from litestar import Litestar

from common.errors import ConfigError
from common.logs import configure_logging
from common.settings import load_settings

log = logging.getLogger(__name__)

APP_FACTORY: Final = "api.server:create_worker_app"
SERVERS: Final = ("granian", "uvicorn")


def create_worker_app() -> Litestar:
    """The entry point of each server worker process: settings from the environment, logging, the app."""
    from api.app import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def serve(host: str, port: int, workers: int, server: str = "granian") -> None:
    """Serve the API until interrupted.

    Args:
        host: Address to bind.
        port: Port to bind.
        workers: Server processes; each holds its own copy of the live version's catalog.
        server: ``granian`` or ``uvicorn``.

    Raises:
        ConfigError: Unknown server, or uvicorn asked for but not installed.
    """
    log.info("serving on %s:%d: server=%s workers=%d", host, port, server, workers)
    if server == "granian":
        _serve_granian(host, port, workers)
    elif server == "uvicorn":
        _serve_uvicorn(host, port, workers)
    else:
        raise ConfigError(f"unknown server {server!r}: choose one of {', '.join(SERVERS)}")


def _serve_granian(host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops

    Granian(
        APP_FACTORY,
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
    ).serve()


def _serve_uvicorn(host: str, port: int, workers: int) -> None:
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
        access_log=False,
        log_level="warning",
    )
