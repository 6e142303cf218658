"""aiokafka's fetcher, patched (streams/kafka_headers.py), reads on past a record whose header
key is not UTF-8: every record of a fetch comes, at its offset, whatever batch it is in."""

from __future__ import annotations

import logging
import struct
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record import default_records, memory_records
from aiokafka.structs import TopicPartition
from prometheus_client import REGISTRY

from riverwatch.streams import kafka_headers
from riverwatch.streams.kafka_headers import LenientRecords

kafka_headers.install()
ORIGINAL_RECORDS = LenientRecords.inner  # the Cython reader, unless AIOKAFKA_NO_EXTENSIONS
ORIGINAL_PARTITION = fetcher.PartitionRecords.__bases__[0]
GZIP = default_records.DefaultRecordBase.CODEC_GZIP
TP = TopicPartition("t1-labels", 3)
BAD = "BAD"


class Key(str):
    """A header key whose bytes are not UTF-8 (the pure-Python builder encodes it itself)."""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        return b"\xff\xfe"


def batch(base: int, keys: list[str], compression: int = 0) -> bytes:
    """A v2 batch at ``base``: one record per key (value ``v<offset>``), each with a header
    ``(key, b"h")``; ``BAD`` stands for a key that is not UTF-8."""
    b = default_records._DefaultRecordBatchBuilderPy(2, compression, 0, -1, -1, -1, 1 << 20)
    for i, key in enumerate(keys):
        b.append(i, 1000, b"k", f"v{base + i}".encode(), [(Key() if key == BAD else key, b"h")])
    raw = bytearray(b.build())
    struct.pack_into(">q", raw, 0, base)  # the broker's base offset (not under the CRC)
    return bytes(raw)


# three batches, one compressed, then the start of a fourth cut off (as a fetch may end)
FETCH = (
    batch(0, ["a", BAD, "b"])
    + batch(3, ["c", BAD], compression=GZIP)
    + batch(5, [BAD, "d", BAD])
    + batch(8, ["e"])[:20]
)
WANT = [(0, "a"), (1, "\\xff\\xfe"), (2, "b"), (3, "c"), (4, "\\xff\\xfe"), (5, "\\xff\\xfe")]
WANT += [(6, "d"), (7, "\\xff\\xfe")]


def read(records: Any, isolation: int) -> tuple[list[Any], int]:
    """What aiokafka's fetcher makes of ``records`` (from offset 0): the (offset, header key)
    of each record it hands the consumer, checked against its value; the next fetch offset."""
    got = fetcher.PartitionRecords(TP, records, None, 0, None, None, True, isolation)
    out = []
    for r in got:
        assert r.value == f"v{r.offset}".encode() and r.key == b"k" and r.topic == TP.topic
        ((key, value),) = r.headers
        assert value == b"h"
        out.append((r.offset, key))
    return out, got.next_fetch_offset


def replaced() -> float:
    labels = {"topic": "labels", "outcome": "header_key_replaced"}
    return REGISTRY.get_sample_value("riverwatch_events_total", labels) or 0.0


@pytest.fixture(params=["default", "py"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """aiokafka's MemoryRecords: the default one (Cython) or, as with AIOKAFKA_NO_EXTENSIONS,
    the pure-Python one reading batches with the pure-Python reader."""
    if request.param == "default":
        return ORIGINAL_RECORDS
    py = default_records._DefaultRecordBatchPy
    monkeypatch.setattr(memory_records, "DefaultRecordBatch", py)
    return memory_records._MemoryRecordsPy


@pytest.mark.parametrize("isolation", [fetcher.READ_UNCOMMITTED, fetcher.READ_COMMITTED])
def test_every_record_of_a_fetch_comes_at_its_offset(
    reader: Any, isolation: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Records after a bad key in its batch, in later batches (compressed or not) and the bad
    ones themselves come, at their offsets; each bad one is logged and counted once."""
    monkeypatch.setattr(LenientRecords, "inner", reader)
    before = replaced()
    with caplog.at_level(logging.WARNING, logger=kafka_headers.__name__):
        assert read(fetcher.MemoryRecords(FETCH), isolation) == (WANT, 8)
    assert replaced() - before == 4
    told = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in told] == [f"t1-labels[3]@{o}" for o in (1, 4, 5, 7)]
    assert all("read as ['\\\\xff\\\\xfe']" in m for m in told)
    # each once, straight from the batches (the fetcher would drop a record yielded twice)
    records = fetcher.MemoryRecords(FETCH)
    assert [r.offset for _ in range(3) for r in records.next_batch()] == list(range(8))
    assert not records.has_next()


def test_without_the_patch_the_fetch_raises_at_the_first_bad_key(reader: Any) -> None:
    """What the patch is for: aiokafka's own fetcher stops at offset 1 (the Cython reader with
    UnicodeDecodeError, the pure-Python one with CorruptRecordException)."""
    got = ORIGINAL_PARTITION(TP, reader(FETCH), None, 0, None, None, True, 0)
    assert next(got).offset == 0
    with pytest.raises((UnicodeDecodeError, CorruptRecordException)) as raised:
        next(got)
    assert isinstance(raised.value.__cause__ or raised.value, UnicodeDecodeError)


def test_a_fetch_without_bad_keys_is_read_by_the_original_reader() -> None:
    """A batch that reads cleanly never goes to the pure-Python reader."""
    records = fetcher.MemoryRecords(batch(0, ["a", "b"]) + batch(2, ["c"]))
    first = records.next_batch()
    assert type(first._batch) is type(ORIGINAL_RECORDS(batch(0, ["a"])).next_batch())
    assert [r.offset for r in first] == [0, 1]
    assert next(records.next_batch()).offset == 2  # next() alone, as on a control batch


@pytest.mark.parametrize("keys", [["a", "b"], ["a", BAD]], ids=["good", "bad"])
def test_other_corruption_is_raised_as_before(
    keys: list[str], reader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that claims one record more than it holds still raises, read leniently or not."""
    monkeypatch.setattr(LenientRecords, "inner", reader)
    raw = bytearray(batch(0, keys))
    struct.pack_into(">i", raw, 57, 3)  # the records count, last field of the batch header
    with pytest.raises((CorruptRecordException, IndexError, ValueError)):
        list(LenientRecords(bytes(raw)).next_batch())


def test_install_refuses_an_aiokafka_it_was_not_written_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Internals missing: install() raises, naming the version, and patches nothing."""
    monkeypatch.setattr(fetcher, "MemoryRecords", ORIGINAL_RECORDS)
    monkeypatch.delattr(default_records, "_DefaultRecordBatchPy")
    with pytest.raises(RuntimeError, match=r"written against 0\.14\.0.*_DefaultRecordBatchPy"):
        kafka_headers.install()
    assert fetcher.MemoryRecords is ORIGINAL_RECORDS


def test_install_twice_patches_once() -> None:
    patched = fetcher.PartitionRecords
    kafka_headers.install()
    assert fetcher.PartitionRecords is patched and fetcher.MemoryRecords is LenientRecords
