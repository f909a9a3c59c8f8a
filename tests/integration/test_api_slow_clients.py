"""A client that never finishes its request head is cut off by the header timeout, and held connections do not stop
normal requests (``postrec serve`` on granian, a real server process)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from common.settings import Settings
from tests.api_fixtures import running_server

HALF_SENT = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # the head never ends
HELD = 200
RECV_GUARD_S = 20  # not a timing check: granian's default header timeout (30 s) would pass it


@pytest.fixture(scope="module")
def server(base_settings: Settings) -> Iterator[str]:
    # Nothing is published under this prefix: /health answers 503, which is all these tests need.
    env = {"POSTREC_REDIS_URL": base_settings.redis_url, "POSTREC_PREFIX": f"postrec_test_slow_{uuid.uuid4().hex[:8]}"}
    with running_server(env, options=["--header-timeout", "1"]) as url:
        yield url


def open_half_sent(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=RECV_GUARD_S)
    sock.sendall(HALF_SENT)
    return sock


def test_a_half_sent_request_is_cut_off(server: str) -> None:
    with open_half_sent(server) as sock:
        try:
            reply = sock.recv(4096)  # the server closes the connection (maybe answering 408 first)
        except TimeoutError:
            pytest.fail(f"the connection was still open after {RECV_GUARD_S} s")
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408")


def test_held_connections_do_not_stop_normal_requests(server: str) -> None:
    held = [open_half_sent(server) for _ in range(HELD)]
    try:
        assert httpx.get(f"{server}/health", timeout=10.0).status_code in (200, 503)  # 503: nothing published
    finally:
        for sock in held:
            sock.close()
