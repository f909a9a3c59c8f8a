"""``postrec serve``."""

from __future__ import annotations

import argparse

from common.settings import Settings


def _cmd_serve(_settings: Settings, args: argparse.Namespace) -> int:
    from api.server import serve

    # Each worker process reads its settings from the same environment (see api.server.create_worker_app).
    serve(args.host, args.port, args.workers, args.server)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the API's subcommands."""
    serve = commands.add_parser("serve", help="serve the recommendation API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")
    serve.add_argument("--server", choices=("granian", "uvicorn"), default="granian", help="ASGI server")
    serve.set_defaults(handler=_cmd_serve)
