"""A lean, pipelined Redis connection for the API's hot path.

redis-py's asyncio client spends about 100 microseconds of Python per command (a pooled connection checked out
and back in, retry and timeout wrappers, observability hooks); at thousands of requests per second on two cores
that is most of the budget. The hot path sends one command (EVALSHA) per request, so it gets this small client
instead: one connection per process, on which concurrent requests pipeline their commands and replies are matched
to callers in order, parsed by hiredis. Everything else (version loading, health) keeps using redis-py.

Failure semantics: a reply that does not come within the timeout, or a dropped connection, fails every command in
flight on that connection with :class:`~common.errors.StoreUnavailableError` and closes it (replies could no
longer be matched to callers); the next command opens a new connection, so service resumes as soon as Redis
answers again.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import NoScriptError, ResponseError

from common.errors import StoreUnavailableError

Arg = bytes | str | int
Reply = Any  # bytes, int, None, list of replies, or hiredis.ReplyError
# Takes the reply of a command nobody awaits, or the error that lost it (the connection went).
ReplyHandler = Callable[[Reply], None]


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where and how to connect: TCP host and port, or a unix socket path; credentials; database; TLS."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def of_client(cls, client: aioredis.Redis[bytes]) -> RedisAddress:
        """The address a redis-py client was made for, so both talk to the same Redis."""
        pool = client.connection_pool
        kwargs: Mapping[str, Any] = pool.connection_kwargs
        return cls(
            host=str(kwargs.get("host", "127.0.0.1")),
            port=int(kwargs.get("port", 6379)),
            path=kwargs.get("path"),
            db=int(kwargs.get("db", 0) or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            tls=issubclass(pool.connection_class, SSLConnection),
        )


def unreachable(reason: str) -> StoreUnavailableError:
    """The error every failed Redis call becomes (answered with 503), with what went wrong and what to check."""
    return StoreUnavailableError(f"Redis is unreachable ({reason}): check that Redis runs at POSTREC_REDIS_URL")


def encode_command(args: tuple[Arg, ...]) -> bytes:
    """A command in the Redis protocol (RESP2): an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class _PipelineProtocol(asyncio.Protocol):
    """One connection: commands go out in order, replies resolve the oldest waiting caller.

    A socket write per command would cost a system call and a wake-up of Redis each; under load many requests
    queue a command in the same event-loop turn, and one write carries them all (Redis answers them as a pipeline).
    """

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: deque[asyncio.Future[Reply] | ReplyHandler] = deque()
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self.alive = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.alive = True

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter = self._waiting.popleft()
            if not isinstance(waiter, asyncio.Future):
                waiter(reply)
            elif not waiter.done():
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self._fail_all(unreachable("connection lost"))

    def send(self, payload: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Reply]:
        """Queue a command; the queue is written once per event-loop turn, so concurrent requests share a write."""
        waiter: asyncio.Future[Reply] = loop.create_future()
        self.send_to(payload, waiter, loop)
        return waiter

    def send_to(
        self, payload: bytes, waiter: asyncio.Future[Reply] | ReplyHandler, loop: asyncio.AbstractEventLoop
    ) -> None:
        """Queue a command whose reply goes to ``waiter`` (a future, or a handler called with it)."""
        if self._transport is None:
            raise unreachable("connection not open")
        self._waiting.append(waiter)
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(payload)

    def _flush(self) -> None:
        if self.alive and self._transport is not None:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def abort(self, error: StoreUnavailableError) -> None:
        """Give up on this connection: fail everything in flight and drop it."""
        self.alive = False
        self._fail_all(error)
        if self._transport is not None:
            self._transport.abort()

    def _fail_all(self, error: StoreUnavailableError) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not isinstance(waiter, asyncio.Future):
                waiter(error)
            elif not waiter.done():
                waiter.set_exception(error)


class RedisWire:
    """Pipelined commands over one lazily (re)opened connection, each bounded by ``timeout_s``."""

    def __init__(self, address: RedisAddress, timeout_s: float) -> None:
        """Connect to ``address`` on first use; wait at most ``timeout_s`` to connect and for each reply."""
        self._address = address
        self._timeout_s = timeout_s
        self._protocol: _PipelineProtocol | None = None
        self._connecting: asyncio.Future[_PipelineProtocol] | None = None

    async def call(self, *args: Arg) -> Reply:
        """Send one command and return its reply.

        Raises:
            StoreUnavailableError: Redis cannot be reached or did not answer in time.
            NoScriptError: EVALSHA named a script Redis does not hold (it restarted or was flushed).
            ResponseError: Redis answered with another error.
        """
        protocol = self._protocol
        if protocol is None or not protocol.alive:
            protocol = await self._connected()
        reply = await self._round_trip(protocol, encode_command(args))
        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            raise NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)
        return reply

    def send_nowait(self, commands: list[bytes], on_reply: ReplyHandler) -> bool:
        """Queue encoded commands on the open connection, in one write, without waiting for them (best-effort).

        ``on_reply`` is called with each reply (a :class:`hiredis.ReplyError` when Redis refused the command), or
        with a :class:`~common.errors.StoreUnavailableError` when the connection went first. No future and no
        callback scheduling: a command costs a deque append.

        Returns:
            False when no connection is open: nothing was sent.
        """
        protocol = self._protocol
        if protocol is None or not protocol.alive:
            return False
        loop = asyncio.get_running_loop()
        for command in commands:
            protocol.send_to(command, on_reply, loop)
        return True

    async def close(self) -> None:
        """Close the connection, if open."""
        if self._protocol is not None:
            self._protocol.abort(StoreUnavailableError("the API is shutting down"))
            self._protocol = None

    async def _round_trip(self, protocol: _PipelineProtocol, payload: bytes) -> Reply:
        loop = asyncio.get_running_loop()
        waiter = protocol.send(payload, loop)
        timer = loop.call_later(self._timeout_s, self._on_timeout, protocol, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _on_timeout(self, protocol: _PipelineProtocol, waiter: asyncio.Future[Reply]) -> None:
        if not waiter.done():
            protocol.abort(unreachable(f"no answer within {self._timeout_s * 1000:.0f} ms"))

    async def _connected(self) -> _PipelineProtocol:
        """The live connection, opening one (once, shared by every caller waiting meanwhile) when needed."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _PipelineProtocol:
        loop = asyncio.get_running_loop()
        address = self._address
        try:
            async with asyncio.timeout(self._timeout_s):
                if address.path is not None:
                    _, protocol = await loop.create_unix_connection(_PipelineProtocol, address.path)
                else:
                    context = ssl.create_default_context() if address.tls else None
                    _, protocol = await loop.create_connection(
                        _PipelineProtocol, address.host, address.port, ssl=context
                    )
        except (OSError, TimeoutError) as exc:
            raise unreachable(type(exc).__name__) from None
        await self._handshake(protocol)
        self._protocol = protocol
        return protocol

    async def _handshake(self, protocol: _PipelineProtocol) -> None:
        address = self._address
        commands: list[tuple[Arg, ...]] = []
        if address.password is not None:
            credentials = (address.password,) if address.username is None else (address.username, address.password)
            commands.append(("AUTH", *credentials))
        if address.db:
            commands.append(("SELECT", address.db))
        for command in commands:
            reply = await self._round_trip(protocol, encode_command(command))
            if isinstance(reply, hiredis.ReplyError):
                error = StoreUnavailableError(f"Redis refused {command[0]!s}: {reply}: check POSTREC_REDIS_URL")
                protocol.abort(error)
                raise error
