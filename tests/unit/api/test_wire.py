"""The hot path's Redis protocol encoding and address parsing."""

from __future__ import annotations

import hiredis
import pytest
import redis.asyncio as aioredis

from api.wire import RedisAddress, encode_command

SECRET = "pw"  # noqa: S105 - as spelled in the URLs below


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("GET", "k"), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        ((b"EVALSHA", "ab", 4, -1), b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n4\r\n$2\r\n-1\r\n"),
        (("SET", "k", ""), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"),
        (("SET", "k", "é\r\n"), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n\xc3\xa9\r\n\r\n"),  # length in bytes
    ],
)
def test_encodes_commands_as_resp_arrays_of_bulk_strings(args: tuple[object, ...], expected: bytes) -> None:
    assert encode_command(args) == expected  # type: ignore[arg-type]


def test_encoding_round_trips_through_a_resp_parser() -> None:
    parser = hiredis.Reader()
    parser.feed(encode_command(("LPUSH", "key{1}", 12345, b"\x00bin")))
    assert parser.gets() == [b"LPUSH", b"key{1}", b"12345", b"\x00bin"]


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://127.0.0.1:6379/0", RedisAddress("127.0.0.1", 6379)),
        ("redis://:pw@cache:6380/3", RedisAddress("cache", 6380, db=3, password=SECRET)),
        (
            "rediss://user:pw@cache:6390/1",
            RedisAddress("cache", 6390, db=1, username="user", password=SECRET, tls=True),
        ),
        ("unix:///run/redis.sock?db=2", RedisAddress(path="/run/redis.sock", db=2)),
    ],
)
def test_address_is_the_one_the_redis_py_client_uses(url: str, address: RedisAddress) -> None:
    assert RedisAddress.of_client(aioredis.Redis.from_url(url)) == address
