"""Writing every user's list fast: RPUSH commands encoded in bulk and sent many users per round trip.

redis-py encodes each command argument in Python, which caps a plain pipeline at a few thousand users per second
with K=200; here the wire form (RESP) of every post id is encoded once, a block of users' commands is assembled
with numpy, sent as one buffer, and the replies are read back and checked.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import redis

from common.errors import PublishError
from common.keys import KeyLayout

USERS_PER_ROUND_TRIP: Final = 2_000


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class RespTable:
    """The RESP bulk-string encoding of each post id, padded into a byte matrix for vectorised gathering."""

    def __init__(self, post_ids: npt.NDArray[np.int32]) -> None:
        """Encode ``post_ids`` (any order; -1 entries of a ranking are never looked up)."""
        self.ids = np.unique(post_ids[post_ids >= 0])
        encoded = [_bulk(b"%d" % value) for value in self.ids.tolist()]
        width = max((len(item) for item in encoded), default=1)
        self.lengths = np.array([len(item) for item in encoded], dtype=np.int64)
        self.table = np.zeros((len(encoded), width), dtype=np.uint8)
        for row, item in enumerate(encoded):
            self.table[row, : len(item)] = np.frombuffer(item, dtype=np.uint8)
        self.mask = np.arange(width)[None, :] < self.lengths[:, None]

    def encode_rows(self, rows: npt.NDArray[np.int32]) -> tuple[bytes, list[int]]:
        """Concatenated encodings of every id in ``rows`` (users x k, row-major, no padding allowed).

        Returns:
            The bytes and the end offset of each row in them.
        """
        positions = np.searchsorted(self.ids, rows)
        body = self.table[positions][self.mask[positions]].tobytes()
        ends = np.cumsum(self.lengths[positions].sum(axis=1)).tolist()
        return body, ends


class RankingWriter:
    """Writes the lists of one version (``KeyLayout.recs``) through one connection."""

    def __init__(self, client: redis.Redis[bytes], keys: KeyLayout, version: str) -> None:
        """Bind to a client, a key layout and a version."""
        self.client = client
        self.keys = keys
        self.version = version

    def _commands(self, table: RespTable, user_ids: list[int], rows: npt.NDArray[np.int32]) -> bytes:
        parts: list[bytes | memoryview] = []
        full = rows >= 0
        lengths = full.sum(axis=1).tolist()
        if bool(full.all()):
            body, ends = table.encode_rows(rows)
        else:  # short lists (a user liked nearly everything): encode row by row
            pieces = [table.encode_rows(row[row >= 0][None, :])[0] for row in rows]
            body, ends = b"".join(pieces), np.cumsum([len(piece) for piece in pieces]).tolist()
        view, start = memoryview(body), 0
        for user_id, length, end in zip(user_ids, lengths, ends, strict=True):
            if length:
                key = self.keys.recs(self.version, user_id).encode()
                parts.append(b"*%d\r\n$5\r\nRPUSH\r\n%s" % (length + 2, _bulk(key)))
                parts.append(view[start:end])
            start = end
        return b"".join(parts)

    def _round_trip(self, connection: redis.connection.Connection, payload: bytes, lengths: list[int]) -> None:
        connection.send_packed_command([payload], check_health=False)  # type: ignore[list-item]
        for length in lengths:
            reply = connection.read_response()
            if reply != length:
                raise PublishError(f"RPUSH of a list of {length} posts answered {reply!r}")

    def write(self, user_ids: npt.NDArray[np.int32], post_ids: npt.NDArray[np.int32]) -> int:
        """RPUSH every user's non-padding post ids (the keys must not exist yet). Returns users written."""
        table = RespTable(post_ids)
        connection = self.client.connection_pool.get_connection()
        written = 0
        try:
            for start in range(0, user_ids.size, USERS_PER_ROUND_TRIP):
                rows = post_ids[start : start + USERS_PER_ROUND_TRIP]
                users = user_ids[start : start + USERS_PER_ROUND_TRIP].tolist()
                lengths = [length for length in (rows >= 0).sum(axis=1).tolist() if length]
                self._round_trip(connection, self._commands(table, users, rows), lengths)
                written += len(lengths)
        except BaseException:
            connection.disconnect()  # replies may be pending on it: never reuse it
            raise
        finally:
            self.client.connection_pool.release(connection)
        return written
