"""The blocking client's command packer sends what redis-py's own packers send."""

from __future__ import annotations

import pytest
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer
from redis.exceptions import DataError

from riverwatch.core.resp import JoinPacker

ENCODE = Encoder("utf-8", "strict", False).encode

COMMANDS = [
    ("GET", "k"),
    ("SET", "k", b"v", "EX", 60),
    ("CONFIG GET", "maxmemory"),  # literal arguments in the command name
    (b"CLIENT SETNAME", b"w"),
    ("HINCRBYFLOAT", "h", "f", 0.1 + 0.2),
    ("EVALSHA", "a" * 40, 3, "k:é", "k2", "k3", b"\x00\r\n" * 3000, -7, 1e300),
    ("SET", "big", b"x" * 100_000),  # beyond redis-py's 6,000-byte buffer cutoff
    ("SET", "view", memoryview(b"abc")),
    ("PING",),
]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_the_wire_bytes_are_redis_pys(cmd: tuple[object, ...]) -> None:
    ours = b"".join(JoinPacker(ENCODE).pack(*cmd))
    theirs = b"".join(bytes(p) for p in PythonRespSerializer(6000, ENCODE).pack(*cmd))
    assert ours == theirs


@pytest.mark.parametrize("bad", [True, None, object()])
def test_values_redis_cannot_take_are_refused_as_redis_py_refuses_them(bad: object) -> None:
    with pytest.raises(DataError):
        JoinPacker(ENCODE).pack("SET", "k", bad)
