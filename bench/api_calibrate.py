"""A trivial ASGI app of the same response size, for bench/api.sh: what granian on this box serves when the app
does nothing, so the API's figures can be read against the machine's state at the time (it is shared and noisy).

    granian --interface asgi --workers 2 bench.api_calibrate:app   (run from the repository root)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]

BODY = (
    b'{"exp_group":"test","recommendations":['
    + b",".join([b'{"id":1,"text":"' + b"w " * 6 + b'","topic":"movie"}'] * 5)
    + b"]}"
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    """Answer every HTTP request with a fixed recommendations-sized body; accept lifespan events."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
