"""A dead letter is bounded whatever its record holds (streams.records.dead_letter)."""

from __future__ import annotations

import orjson

from riverwatch.core.outputs import DeadLetter
from riverwatch.streams.records import DEAD_LETTER_MAX_BYTES, Record, dead_letter


def test_a_small_record_is_quoted_whole() -> None:
    out = dead_letter("dl", Record("tx", 1, 7, b"k", b'{"a": 1}'), "bad", "w")
    body = DeadLetter.model_validate_json(out.value)
    assert (body.key, body.value, body.value_bytes, body.truncated) == ("k", '{"a": 1}', 8, False)
    assert (body.origin_topic, body.partition, body.offset, body.error) == ("tx", 1, 7, "bad")
    assert out.key == b"k"


def test_a_huge_record_key_and_error_are_cut_and_said_so() -> None:
    value, key = b"\x01\xff" * 500_000, b"K" * 300_000  # control bytes quote as 6, others as 3
    out = dead_letter("dl", Record("tx", 0, 3, key, value), "e" * 10**6, "w")
    body = orjson.loads(out.value)
    assert len(out.value) < 6 * 2 * DEAD_LETTER_MAX_BYTES + 10_000 < 1_000_000
    assert body["value_bytes"] == 1_000_000 and body["truncated"] is True
    assert body["value"] == ("\x01\ufffd" * (DEAD_LETTER_MAX_BYTES // 2))
    assert body["key"] == "K" * DEAD_LETTER_MAX_BYTES and out.key == key[:DEAD_LETTER_MAX_BYTES]
    assert len(body["error"]) == 4096


def test_a_long_key_alone_marks_it_cut() -> None:
    out = dead_letter("dl", Record("tx", 0, 3, b"K" * (DEAD_LETTER_MAX_BYTES + 1), b"v"), "x", "w")
    assert orjson.loads(out.value)["truncated"] is True
