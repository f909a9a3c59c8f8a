"""The hot path's pipelined connection on Redis Cluster: one :class:`~api.wire.RedisWire` per master, by slot.

Each command goes to the master of its first key's slot (the key of EVALSHA is its first KEYS entry), over that
master's pipelined connection, so requests for users on different masters pipeline on different connections.
``SCRIPT`` (loading the serving script) and ``PING`` (the served log's drain: every connection answers all it was
sent before) go to every master. The slot map comes from ``CLUSTER SLOTS`` of a seed node when first needed, and
again after a ``MOVED`` reply (the slot moved to another master: resharding or a failover), after which the command
is sent once more to the new owner. A key of a slot in the middle of a
migration that has already left (``ASK``) is asked for once on the importing master, after ``ASKING``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import hiredis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from api.wire import Arg, RedisAddress, RedisWire, Reply, ReplyHandler, encode_command, unreachable
from common.errors import StoreUnavailableError
from common.redis_clients import parse_cluster_url

SLOTS: Final = 16384
TO_EVERY_MASTER: Final = frozenset({b"SCRIPT", b"PING"})
KEY_POSITION: Final = {b"EVALSHA": 3, b"EVAL": 3}  # where the first key is; 1 for every other keyed command


def _raw(arg: Arg) -> bytes:
    return arg if isinstance(arg, bytes) else str(arg).encode()


def routing_key(args: Sequence[Arg]) -> bytes | None:
    """The key that decides where a command goes (None for EVALSHA without keys, or a command without a key)."""
    command = _raw(args[0]).upper()
    position = KEY_POSITION.get(command, 1)
    if command in KEY_POSITION and int(_raw(args[2])) == 0:
        return None
    return _raw(args[position]) if len(args) > position else None


def encoded_key(command: bytes) -> bytes:
    """The key (second element) of a command encoded by :func:`api.wire.encode_command`."""
    # *<n>\r\n$<len>\r\n<name>\r\n$<len>\r\n<key>\r\n...
    return command.split(b"\r\n", 5)[4]


def slot_owners(reply: Sequence[Sequence[object]], asked: RedisAddress) -> list[tuple[str, int]]:
    """The master (host, port) of every slot, from a ``CLUSTER SLOTS`` reply given by the node at ``asked``."""
    owners: list[tuple[str, int]] = [("", 0)] * SLOTS
    for entry in reply:
        first, last, master = int(str(entry[0])), int(str(entry[1])), entry[2]
        assert isinstance(master, list)  # noqa: S101 - the reply's shape: [host, port, node id, ...]
        host = _raw(master[0]).decode() or asked.host  # an empty host means "the node you asked"
        owners[first : last + 1] = [(host, int(master[1]))] * (last - first + 1)
    return owners


def _ignore(_reply: Reply) -> None:
    """A reply nobody needs (ASKING's OK: a refusal shows in the next command's reply)."""


class ClusterWire:
    """Pipelined commands to the masters of a Redis Cluster, each bounded by ``timeout_s``."""

    def __init__(self, seeds: Sequence[RedisAddress], timeout_s: float) -> None:
        """Learn the slot map from one of ``seeds`` (credentials and TLS are theirs) on first use."""
        self._seeds = list(seeds)
        self._timeout_s = timeout_s
        self._wires: dict[tuple[str, int], RedisWire] = {}
        self._owners: list[tuple[str, int]] | None = None
        self._mapping: asyncio.Lock | None = None

    @classmethod
    def from_url(cls, redis_url: str, timeout_s: float) -> ClusterWire:
        """A wire to the cluster a ``redis+cluster://`` URL names, with its credentials and TLS."""
        url = parse_cluster_url(redis_url)
        seeds = [
            RedisAddress(host=host, port=port, username=url.username, password=url.password, tls=url.tls)
            for host, port in url.nodes
        ]
        return cls(seeds, timeout_s)

    async def call(self, *args: Arg) -> Reply:
        """Send one command to the master of its key (``SCRIPT`` and ``PING`` to every master) and return its reply.

        Raises:
            StoreUnavailableError: No master answers in time, or the slot is being migrated.
            NoScriptError: EVALSHA named a script that master does not hold.
            ResponseError: Redis answered with another error.
        """
        if _raw(args[0]).upper() in TO_EVERY_MASTER:
            return (await self._to_every_master(args))[0]
        key = routing_key(args)
        try:
            return await (await self._wire_for(key)).call(*args)
        except ResponseError as exc:
            redirect = str(exc)
            if redirect.startswith("ASK "):
                return await self._ask(redirect, args)
            if not redirect.startswith("MOVED "):
                raise
        await self._load_slot_map(stale=self._owners)
        return await (await self._wire_for(key)).call(*args)

    async def _ask(self, redirect: str, args: Sequence[Arg]) -> Reply:
        """Send the command to the importing master (``ASK <slot> <host:port>``), right after ``ASKING``."""
        host, _, port = redirect.split(" ")[2].rpartition(":")
        wire = self._wire((host or self._seeds[0].host, int(port)))
        asking = [encode_command(("ASKING",))]
        if not wire.send_nowait(asking, _ignore):
            await wire.call("PING")  # opens the connection
            wire.send_nowait(asking, _ignore)
        # No await between the two: ASKING and the command leave on the same connection, one after the other.
        return await wire.call(*args)

    def send_nowait(self, commands: list[bytes], on_reply: ReplyHandler) -> bool:
        """Queue encoded commands, each on the connection of its key's master, without waiting (best-effort).

        As :meth:`api.wire.RedisWire.send_nowait`; a ``MOVED`` reply also reloads the slot map for later commands.

        Returns:
            False when the slot map is not known yet or a master has no open connection: those were not sent.
        """
        owners = self._owners
        if owners is None:
            return False

        def on_moved(reply: Reply) -> None:
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("MOVED "):
                self._reload_soon(owners)
            on_reply(reply)

        sent = True
        for command in commands:
            sent = self._wire(owners[key_slot(encoded_key(command))]).send_nowait([command], on_moved) and sent
        return sent

    def _reload_soon(self, stale: list[tuple[str, int]]) -> None:
        if self._owners is stale:
            task = asyncio.ensure_future(self._load_slot_map(stale))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # the next call retries

    async def close(self) -> None:
        """Close every master's connection."""
        for wire in self._wires.values():
            await wire.close()
        self._wires.clear()

    async def _to_every_master(self, args: Sequence[Arg]) -> list[Reply]:
        owners = await self._slot_map()
        return [await self._wire(master).call(*args) for master in sorted(set(owners))]

    async def _wire_for(self, key: bytes | None) -> RedisWire:
        owners = await self._slot_map()
        return self._wire(owners[0 if key is None else key_slot(key)])

    def _wire(self, master: tuple[str, int]) -> RedisWire:
        wire = self._wires.get(master)
        if wire is None:
            host, port = master
            wire = self._wires[master] = RedisWire(replace(self._seeds[0], host=host, port=port), self._timeout_s)
        return wire

    async def _slot_map(self) -> list[tuple[str, int]]:
        if self._owners is None:
            await self._load_slot_map(stale=None)
        assert self._owners is not None  # noqa: S101 - loaded above or raised
        return self._owners

    async def _load_slot_map(self, stale: list[tuple[str, int]] | None) -> None:
        """Ask the seeds (then the masters known so far) for the slot map; once, however many callers wait."""
        self._mapping = self._mapping or asyncio.Lock()
        async with self._mapping:
            if self._owners is not stale:  # another caller reloaded it meanwhile
                return
            self._owners = await self._ask_for_slots()

    async def _ask_for_slots(self) -> list[tuple[str, int]]:
        known = [replace(self._seeds[0], host=host, port=port) for host, port in sorted(self._wires)]
        reasons = []
        for address in [*self._seeds, *known]:
            wire = RedisWire(address, self._timeout_s)
            try:
                return slot_owners(await wire.call("CLUSTER", "SLOTS"), address)
            except (StoreUnavailableError, ResponseError) as exc:
                reasons.append(f"{address.host}:{address.port}: {exc}")
            finally:
                await wire.close()
        raise unreachable("no cluster node gave its slot map; " + "; ".join(reasons))
