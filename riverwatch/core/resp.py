"""The blocking Redis client's command packer: one ``b"".join`` per command.

Why by hand what redis-py and hiredis already do: the scorer's write script carries every
event's score and feature row (~1.2 KB an event). hiredis's ``pack_command`` copies argument
bytes at ~0.7 GB/s (1.3 ms for a 500-event batch's 1,000 payloads, against 0.2 ms joined
here) and redis-py's pure-Python packer re-copies its growing buffer per argument up to 6 KB.
Scorer CPU per event with this packer: 0.94x (``bench.hotpath --compare``; README, issue 15,
session 21). The wire format is the same byte for byte (tests/unit/core/test_resp.py).

>>> from redis._parsers.encoders import Encoder
>>> JoinPacker(Encoder("utf-8", "strict", False).encode).pack("SET", "k", b"v", 1, 0.5)
[b'*5\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n$1\\r\\n1\\r\\n$3\\r\\n0.5\\r\\n']
>>> JoinPacker(Encoder("utf-8", "strict", False).encode).pack("CONFIG GET", "x")[0][:23]
b'*3\\r\\n$6\\r\\nCONFIG\\r\\n$3\\r\\nGET'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["JoinPacker"]


class JoinPacker:
    """redis-py's ``command_packer`` interface: ``pack(*args)`` -> the RESP pieces to send.

    ``encode`` is redis-py's ``Encoder.encode`` (str, int, float, bytes, memoryview; it
    refuses other types with DataError, as redis-py's own packers do).
    """

    def __init__(self, encode: Callable[[Any], bytes | memoryview]):
        self.encode = encode

    def pack(self, *args: Any) -> list[bytes]:
        # a command name with literal arguments ("CONFIG GET") goes as separate arguments,
        # as redis-py's packers send it
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        encode = self.encode
        out: list[bytes | memoryview] = [b"*%d\r\n" % len(args)]
        add = out.append
        for a in args:
            b = a if type(a) is bytes else encode(a)
            add(b"$%d\r\n" % len(b))
            add(b)
            add(b"\r\n")
        return [b"".join(out)]
