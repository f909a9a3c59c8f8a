"""Writing every user's list fast: commands encoded in bulk and sent many users per round trip.

RPUSH of K=200 ids costs Redis itself about 15-40 us (each element is parsed, converted and appended one by one),
which caps a publish near 25,000 users/s however the client batches. So the lists are sent as RESTORE commands
carrying the list already serialised the way Redis stores it (one listpack node, DUMP's format), which Redis
loads at memory speed. The serialisation is checked first against the server itself: the first user's list is
written with RPUSH, DUMPed, and compared byte for byte with what this module would send; on any difference
(another Redis version, other list settings, compression) every list goes through the bulk-encoded RPUSH path.
Either way the lists are plain Redis lists of post ids, exactly as RPUSH would leave them.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Final

import anycrc
import numpy as np
import numpy.typing as npt
import redis

from common.errors import PublishError
from common.keys import KeyLayout

log = logging.getLogger(__name__)

USERS_PER_ROUND_TRIP: Final = 2_000
LIST_QUICKLIST_2: Final = 18  # RDB type of a list stored as quicklist nodes of listpacks (Redis 7.0+)
PACKED_NODE: Final = 2
LISTPACK_END: Final = b"\xff"


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


# CRC-64/Jones ("CRC64-REDIS"), the checksum of DUMP payloads, computed in C.
CRC64: Final = anycrc.Model("CRC64-REDIS")


def listpack_entry(value: int) -> bytes:
    """A listpack entry (encoding, payload, back-length) of an integer, as Redis encodes a pushed integer string."""
    if 0 <= value <= 127:
        body = bytes([value])
    elif -4096 <= value <= 4095:
        body = bytes([0xC0 | ((value >> 8) & 0x1F), value & 0xFF])
    elif -32768 <= value <= 32767:
        body = b"\xf1" + struct.pack("<h", value)
    elif -8388608 <= value <= 8388607:
        body = b"\xf2" + struct.pack("<i", value)[:3]
    else:
        body = b"\xf3" + struct.pack("<i", value)
    return body + bytes([len(body)])


def rdb_length(length: int) -> bytes:
    """RDB's length encoding (6-, 14- or 32-bit)."""
    if length < 64:
        return bytes([length])
    if length < 16384:
        return bytes([0x40 | (length >> 8), length & 0xFF])
    return b"\x80" + struct.pack(">I", length)


class ByteTable:
    """A byte string per post id, padded into a matrix so many rows of ids are concatenated at numpy speed."""

    def __init__(self, post_ids: npt.NDArray[np.int32], encode: Callable[[int], bytes]) -> None:
        """Encode each distinct non-negative id of ``post_ids`` with ``encode``."""
        self.ids = np.unique(post_ids[post_ids >= 0])
        # A direct id -> row lookup: a gather instead of a binary search per id.
        self.row_of = np.zeros(int(self.ids.max(initial=0)) + 1, dtype=np.int32)
        self.row_of[self.ids] = np.arange(self.ids.size, dtype=np.int32)
        encoded = [encode(value) for value in self.ids.tolist()]
        width = max((len(item) for item in encoded), default=1)
        self.lengths = np.array([len(item) for item in encoded], dtype=np.int64)
        self.table = np.zeros((len(encoded), width), dtype=np.uint8)
        for row, item in enumerate(encoded):
            self.table[row, : len(item)] = np.frombuffer(item, dtype=np.uint8)
        self.mask = np.arange(width)[None, :] < self.lengths[:, None]

    def encode_rows(self, rows: npt.NDArray[np.int32]) -> tuple[bytes, list[int]]:
        """Concatenated encodings of every id in ``rows`` (users x n, no padding), and each row's end offset."""
        positions = self.row_of[rows]
        body = self.table[positions][self.mask[positions]].tobytes()
        ends = np.cumsum(self.lengths[positions].sum(axis=1)).tolist()
        return body, ends


def resp_table(post_ids: npt.NDArray[np.int32]) -> ByteTable:
    """RESP bulk strings of the ids, for RPUSH."""
    return ByteTable(post_ids, lambda value: _bulk(b"%d" % value))


def _row_bodies(table: ByteTable, rows: npt.NDArray[np.int32]) -> list[bytes | memoryview]:
    """Each row's concatenated encodings, padding (-1) left out."""
    if bool((rows >= 0).all()):
        body, ends = table.encode_rows(rows)
        view, starts = memoryview(body), [0, *ends[:-1]]
        return [view[start:end] for start, end in zip(starts, ends, strict=True)]
    return [table.encode_rows(row[row >= 0][None, :])[0] for row in rows]


class DumpEncoder:
    """DUMP payloads of lists of ids: one quicklist node holding one listpack, RDB version, CRC-64."""

    def __init__(self, post_ids: npt.NDArray[np.int32], rdb_version: bytes) -> None:
        """Prepare the listpack entry of every id; ``rdb_version`` is the 2-byte trailer the server writes."""
        self.entries = ByteTable(post_ids, listpack_entry)
        self.rdb_version = rdb_version

    def payloads(self, rows: npt.NDArray[np.int32]) -> list[bytes]:
        """The full payload of each row's list (rows without padding only)."""
        counts = (rows >= 0).sum(axis=1).tolist()
        return [self._payload(body, count) for body, count in zip(_row_bodies(self.entries, rows), counts, strict=True)]

    def _payload(self, entries: bytes | memoryview, count: int) -> bytes:
        size = 6 + len(entries) + 1
        header = bytes([LIST_QUICKLIST_2, 1, PACKED_NODE]) + rdb_length(size) + struct.pack("<IH", size, count)
        unsigned = b"".join((header, entries, LISTPACK_END, self.rdb_version))
        return unsigned + int(CRC64.calc(unsigned)).to_bytes(8, "little")


class RankingWriter:
    """Writes the lists of one version (``KeyLayout.recs``) through one connection."""

    def __init__(self, client: redis.Redis[bytes], keys: KeyLayout, version: str) -> None:
        """Bind to a client, a key layout and a version."""
        self.client = client
        self.keys = keys
        self.version = version

    def _key(self, user_id: int) -> bytes:
        return self.keys.recs(self.version, user_id).encode()

    def _commands(self, table: ByteTable, user_ids: list[int], rows: npt.NDArray[np.int32]) -> bytes:
        lengths = (rows >= 0).sum(axis=1).tolist()
        parts: list[bytes | memoryview] = []
        for user_id, length, body in zip(user_ids, lengths, _row_bodies(table, rows), strict=True):
            if length:
                parts += [b"*%d\r\n$5\r\nRPUSH\r\n%s" % (length + 2, _bulk(self._key(user_id))), body]
        return b"".join(parts)

    def _restores(self, encoder: DumpEncoder, user_ids: list[int], rows: npt.NDArray[np.int32]) -> bytes:
        full: npt.NDArray[np.bool_] = np.asarray((rows >= 0).any(axis=1))
        payloads = iter(encoder.payloads(rows[full]) if full.any() else [])
        parts = [
            b"*4\r\n$7\r\nRESTORE\r\n%s$1\r\n0\r\n%s" % (_bulk(self._key(user_id)), _bulk(next(payloads)))
            for user_id, has_posts in zip(user_ids, full.tolist(), strict=True)
            if has_posts
        ]
        return b"".join(parts)

    def _round_trip(self, connection: redis.connection.Connection, payload: bytes, expected: list[object]) -> None:
        connection.send_packed_command([payload], check_health=False)  # type: ignore[list-item]
        self._check_replies(connection, expected)

    def _check_replies(self, connection: redis.connection.Connection, expected: list[object]) -> None:
        for want in expected:
            reply = connection.read_response()
            if reply != want:
                raise PublishError(f"writing a list answered {reply!r}, expected {want!r}")

    def _probe_dump(self, connection: redis.connection.Connection, user_id: int, row: npt.NDArray[np.int32]) -> bytes:
        """RPUSH one user's list the plain way and return its DUMP, the reference the encoder must match."""
        posts = row[row >= 0]
        self._round_trip(connection, self._commands(resp_table(row), [user_id], row[None, :]), [int(posts.size)])
        connection.send_command("DUMP", self._key(user_id))
        dumped = connection.read_response()
        return dumped if isinstance(dumped, bytes) else b""

    def _restore_encoder(
        self, connection: redis.connection.Connection, user_id: int, post_ids: npt.NDArray[np.int32], probe: int
    ) -> DumpEncoder | None:
        row = post_ids[probe]
        reference = self._probe_dump(connection, user_id, row)
        if len(reference) < 10:
            return None
        encoder = DumpEncoder(post_ids, reference[-10:-8])
        if encoder.payloads(row[None, :])[0] != reference:
            log.info("list serialisation differs from this Redis's DUMP: writing lists with RPUSH")
            return None
        return encoder

    def write(self, user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32]) -> int:
        """Write every user's non-padding post ids (the keys must not exist yet). Returns users written."""
        lengths = (post_ids >= 0).sum(axis=1)
        if not lengths.any():
            return 0
        probe = int(np.argmax(lengths))  # the longest list shows how the server splits lists into nodes
        connection = self.client.connection_pool.get_connection()
        try:
            encoder = self._restore_encoder(connection, int(user_ids[probe]), post_ids, probe)
            others = np.arange(user_ids.size) != probe
            self._write_all(connection, encoder, user_ids[others], post_ids[others])
        except BaseException:
            connection.disconnect()  # replies may be pending on it: never reuse it
            raise
        finally:
            self.client.connection_pool.release(connection)
        return int((lengths > 0).sum())

    def _write_all(
        self,
        connection: redis.connection.Connection,
        encoder: DumpEncoder | None,
        user_ids: npt.NDArray[np.int32],
        post_ids: npt.NDArray[np.int32],
    ) -> None:
        """Send chunk after chunk, encoding the next one while Redis executes the previous one."""
        table = resp_table(post_ids) if encoder is None else None
        pending: list[object] = []
        for start in range(0, user_ids.size, USERS_PER_ROUND_TRIP):
            rows = post_ids[start : start + USERS_PER_ROUND_TRIP]
            users = user_ids[start : start + USERS_PER_ROUND_TRIP].tolist()
            payload, expected = self._chunk(encoder, table, users, rows)
            self._check_replies(connection, pending)
            connection.send_packed_command([payload], check_health=False)  # type: ignore[list-item]
            pending = expected
        self._check_replies(connection, pending)

    def _chunk(
        self, encoder: DumpEncoder | None, table: ByteTable | None, users: list[int], rows: npt.NDArray[np.int32]
    ) -> tuple[bytes, list[object]]:
        lengths = [length for length in (rows >= 0).sum(axis=1).tolist() if length]
        if encoder is not None:
            return self._restores(encoder, users, rows), [b"OK"] * len(lengths)
        assert table is not None  # noqa: S101 - built by the caller when there is no encoder
        return self._commands(table, users, rows), list(lengths)
