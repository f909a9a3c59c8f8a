"""``postrec serve``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from common.settings import Settings


def _cmd_serve(_settings: Settings, args: argparse.Namespace) -> int:
    from api.server import ConnectionLimits, serve

    if args.pidfile is not None:
        _write_pidfile(args.pidfile)
    try:
        # Each worker process reads its settings from the same environment (see api.server.create_worker_app).
        limits = ConnectionLimits(args.header_timeout, args.max_concurrency, args.backlog)
        serve(args.host, args.port, args.workers, args.server, limits)
    finally:
        if args.pidfile is not None:
            args.pidfile.unlink(missing_ok=True)
    return 0


def _write_pidfile(path: Path) -> None:
    # `postrec services down` (make stop) reads it, so an API left running does not outlive the servers it reads.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the API's subcommands."""
    serve = commands.add_parser("serve", help="serve the recommendation API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")
    serve.add_argument("--server", choices=("granian", "uvicorn"), default="granian", help="ASGI server")
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=5.0,
        help="seconds for a client to send its request head, else the connection is closed (default: 5)",
    )
    serve.add_argument(
        "--max-concurrency", type=int, default=512, help="requests one worker handles at once (default: 512)"
    )
    serve.add_argument("--backlog", type=int, default=1024, help="connections queued by the kernel (default: 1024)")
    serve.add_argument(
        "--pidfile", type=Path, default=None, help="write the server's process id here (make run: <data dir>/api.pid)"
    )
    serve.set_defaults(handler=_cmd_serve)
