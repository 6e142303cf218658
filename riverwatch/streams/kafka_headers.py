"""aiokafka's fetcher, patched so that a record whose header key is not UTF-8 cannot stop a
faust worker.

Why: aiokafka (this was written against 0.14.0) decodes every record header key strictly as
UTF-8 while it reads a fetched batch: its Cython reader raises ``UnicodeDecodeError``, its
pure-Python one (``AIOKAFKA_NO_EXTENSIONS``) a ``CorruptRecordException`` caused by one. The
broker does not check header keys, so any client can write such a record, and the error escapes
from ``aiokafka.consumer.fetcher.PartitionRecords._unpack_records`` inside faust's consumer: the
worker dies at that record, and again after every restart, as its offset is never committed.
riverwatch reads no header, so such a record is read on and handled like any other (validated,
then handled or dead-lettered with its reason); its bad header key reads with
``backslashreplace`` (``b"\\xff"`` as the four characters ``\\xff``), which encodes again should
anything ever forward it. The scoring loop (librdkafka) never decodes headers.

How (:func:`install`, once per process, from :func:`riverwatch.streams.app.create_app`): the
fetcher builds ``MemoryRecords(fetched bytes)`` and then ``PartitionRecords(tp, records, ...)``,
both looked up in ``aiokafka.consumer.fetcher`` at call time; :func:`install` replaces

* ``MemoryRecords`` by :class:`LenientRecords`, which reads through the original one and keeps
  where each batch lies in the bytes (log format v2: base offset int64, length int32, so a batch
  spans 12 + length bytes). Iterating one of its v2 batches reads the original (fast) batch;
  only when that raises on a header key is this one batch read again by aiokafka's pure-Python
  reader (``_DefaultRecordBatchPy``) over a buffer whose text decodes leniently
  (:class:`_LenientBytes`: that reader decodes header keys as ``buffer[i:j].decode("utf-8")``)
  and with its pure-Python varint reader (the Cython one it uses by default reads past the end
  of a batch that claims more records than it holds), past the records already yielded;
* ``PartitionRecords`` by a subclass that only tells the records their topic partition, for
  the log line and the count.

Each such record is logged (WARNING, with its topic, partition and offset) and counted in
``riverwatch_events_total{outcome="header_key_replaced"}``. What it costs a fetch without a bad
key: a wrapper per batch and a generator step per record, measured at about 1.3 µs per batch and
0.05 µs per record over the fetcher's own 1 µs per record (aiokafka's fetcher alone, no faust).

:func:`install` first checks that the internals it relies on are there and reads a crafted batch
with a bad header key through the patch; if aiokafka changed, it raises :class:`RuntimeError`
(the worker does not start) rather than leave the hole open silently.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from functools import partial
from typing import Any

import aiokafka
from aiokafka.consumer import fetcher
from aiokafka.record import default_records
from aiokafka.record.util import decode_varint_py

from riverwatch.core.metrics import EVENTS
from riverwatch.core.names import TOPICS

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">i")  # a batch's length, after its base offset (int64)
_LOG_OVERHEAD = 12  # base offset + length: a batch spans 12 + length bytes
_MAGIC_AT = 16  # base offset, length, partition leader epoch (int32), then magic (int8)
WRITTEN_FOR = "0.14.0"


class _LenientBytes(bytearray):
    """A batch's bytes whose slices decode text that is not UTF-8 with ``backslashreplace``
    (other decodes as asked), counting those in ``root.replaced``."""

    def __init__(self, data: Any, root: _LenientBytes | None = None) -> None:
        super().__init__(data)
        self.root = self if root is None else root
        self.replaced = 0

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return _LenientBytes(item, self.root) if isinstance(index, slice) else item

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        try:
            return super().decode(encoding, errors)
        except UnicodeDecodeError:
            self.root.replaced += 1
            return super().decode(encoding, "backslashreplace")


def _header_key_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a batch reader's (Cython or pure-Python) failure to decode text: the
    only text in a v2 record is its header keys."""
    return isinstance(exc, UnicodeDecodeError) or isinstance(exc.__cause__, UnicodeDecodeError)


class _Batch:
    """One v2 batch (bytes ``start:end`` of ``owner``'s), read by the original reader, whose
    attributes it shows; if that raises on a header key, the rest is read leniently."""

    __slots__ = ("_batch", "_end", "_owner", "_records", "_start")

    def __init__(self, batch: Any, owner: LenientRecords, start: int, end: int) -> None:
        self._batch, self._owner, self._start, self._end = batch, owner, start, end
        self._records: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:  # what _ATTRIBUTES does not name (slow)
        return getattr(self._batch, name)

    def __iter__(self) -> Iterator[Any]:  # the records themselves: no call per record
        if self._records is None:
            self._records = self._read()
        return self._records

    def __next__(self) -> Any:  # the fetcher calls next() alone on a control batch
        return next(iter(self))

    def _read(self) -> Iterator[Any]:
        done = 0
        try:
            # nothing is thrown into this generator but GeneratorExit: only the reader raises
            for record in self._batch:
                yield record
                done += 1
        except Exception as exc:
            if not _header_key_error(exc):
                raise
            yield from self._lenient(done, exc)

    def _lenient(self, done: int, exc: Exception) -> Iterator[Any]:
        """The batch's records after the first ``done``, read by the pure-Python reader with
        lenient header keys; ``exc`` (the original reader's) again if that does not explain it."""
        raw = memoryview(self._owner.data)[self._start : self._end]
        batch = default_records._DefaultRecordBatchPy(raw)
        if batch.base_offset != self._batch.base_offset:  # not the batch that raised
            raise exc
        records = iter(batch)  # decompresses into batch._buffer
        buf = batch._buffer = _LenientBytes(batch._buffer)
        # aiokafka's own varint reader, the Cython one, reads past the end of a batch that
        # claims more records than it holds (a segfault, seen): the Python one raises
        batch._read_msg = partial(batch._read_msg, decode_varint=decode_varint_py)
        replaced = 0
        for i, record in enumerate(records):
            bad, replaced = buf.replaced > replaced, buf.replaced
            if i == done and not bad:  # the record that raised decodes: something else is wrong
                raise exc
            if i >= done:
                if bad:
                    self._owner.replaced(record)
                yield record


# The batch's attributes the fetcher reads (aiokafka's DefaultRecordBatchProtocol), as
# properties: a miss that falls through to __getattr__ costs about 0.8 µs.
_ATTRIBUTES = (
    "base_offset", "magic", "crc", "attributes", "compression_type", "timestamp_type",
    "is_transactional", "is_control_batch", "last_offset_delta", "first_timestamp",
    "max_timestamp", "producer_id", "producer_epoch", "base_sequence", "next_offset",
    "validate_crc",
)  # fmt: skip


def _shown(name: str) -> property:
    return property(lambda self: getattr(self._batch, name))


for _name in _ATTRIBUTES:
    setattr(_Batch, _name, _shown(_name))


class LenientRecords:
    """``aiokafka.consumer.fetcher.MemoryRecords`` (one partition's fetched bytes), read by the
    original (:attr:`inner`), whose v2 batches come as :class:`_Batch` es."""

    inner: Any = None  # the fetcher's own MemoryRecords, set by install()

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._records = self.inner(data)
        self._pos = 0
        self.tp: Any = None  # TopicPartition, set by the fetcher's PartitionRecords

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        start = self._pos
        self._pos = end = start + _LOG_OVERHEAD + _LENGTH.unpack_from(self.data, start + 8)[0]
        if self.data[start + _MAGIC_AT] < 2:  # v0, v1: no headers
            return batch
        return _Batch(batch, self, start, end)

    def replaced(self, record: Any) -> None:
        """Log and count ``record``, read on with a header key that is not UTF-8."""
        topic, partition = (self.tp.topic, self.tp.partition) if self.tp else ("?", -1)
        keys = repr([k for k, _ in record.headers])
        log.warning(
            "%s[%d]@%d: a header key is not UTF-8, read as %s; the record is read on",
            topic, partition, record.offset, keys[:200],
        )  # fmt: skip
        label = next((t for t in TOPICS if topic.endswith(t)), topic)
        EVENTS.labels(topic=label, outcome="header_key_replaced").inc()


class _Probe(LenientRecords):
    """The start-up check's records: what was replaced, kept instead of logged and counted."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bad: list[int] = []

    def replaced(self, record: Any) -> None:
        self.bad.append(record.offset)


def _probe() -> None:
    """Read a batch of three records whose second one's header key is not UTF-8 through the
    patch; raise unless all three come, that key read leniently."""
    b = default_records.DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 16)
    for offset in range(3):
        b.append(offset, 0, None, b"v", [("\x7frw-probe" if offset == 1 else "ok", b"")])
    probe = _Probe(bytes(b.build()).replace(b"\x7frw-probe", b"\xffrw-probe"))
    got = []
    while probe.has_next():
        got += [(r.offset, r.headers) for r in probe.next_batch()]
    want = [(0, [("ok", b"")]), (1, [("\\xffrw-probe", b"")]), (2, [("ok", b"")])]
    if got != want or probe.bad != [1]:
        raise AssertionError(f"read {got}, replaced {probe.bad}")


def install() -> None:
    """Patch aiokafka's fetcher (see the module); later calls do nothing. Raises RuntimeError
    if the aiokafka internals the patch relies on are not as it expects."""
    if getattr(fetcher, "MemoryRecords", None) is LenientRecords:
        return
    try:
        LenientRecords.inner = fetcher.MemoryRecords
        base = fetcher.PartitionRecords
        _probe()
    except Exception as exc:
        raise RuntimeError(
            f"riverwatch.streams.kafka_headers cannot patch the record reader of aiokafka "
            f"{aiokafka.__version__} (written against {WRITTEN_FOR}): {exc!r}. Without it a "
            "record whose header key is not UTF-8 stops every faust worker that reads it: "
            "adapt the patch to this aiokafka, or pin aiokafka, before running workers."
        ) from exc

    class _PartitionRecords(base):  # type: ignore[misc,valid-type]
        """The fetcher's PartitionRecords, telling its records their topic partition."""

        def __init__(self, tp: Any, records: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(records, LenientRecords):
                records.tp = tp
            super().__init__(tp, records, *args, **kwargs)

    fetcher.PartitionRecords = _PartitionRecords
    fetcher.MemoryRecords = LenientRecords
    log.info("aiokafka %s patched: a header key that is not UTF-8 is read leniently",
             aiokafka.__version__)  # fmt: skip
