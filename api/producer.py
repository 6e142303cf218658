"""An asyncio face on a confluent-kafka producer: produce a batch, await the broker's acks.

A background thread polls the producer, so delivery callbacks run there; each batch has one
asyncio future that the last callback resolves through ``call_soon_threadsafe``.

An idempotent producer does not survive a broker that restarted empty (the embedded broker
keeps nothing): its producer id is unknown there, librdkafka bumps the epoch of that unknown id
forever and every record times out, for good. So after a fatal error, an unknown producer id,
a delivery timeout or acks that did not come in time, the polling thread replaces it with a
new producer from ``factory`` (what the old one still holds is purged and answered as failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.errors import ServiceUnavailable

log = logging.getLogger(__name__)
# Delivery errors after which the producer is replaced rather than trusted again.
_RENEW_ON = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._FATAL,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_EPOCH,
    }
)


class QueueFull(ServiceUnavailable):
    """The producer's local queue is full: the broker is slower than the callers."""


class _Batch:
    """Counts the outstanding acks of one batch; the last one resolves the future."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        size: int,
        on_error: Callable[[KafkaError], None] | None = None,
    ):
        self.loop = loop
        self.on_error = on_error
        self.future: asyncio.Future[None] = loop.create_future()
        self.remaining = size
        self.error: KafkaError | None = None
        self.lock = threading.Lock()

    def on_delivery(self, err: KafkaError | None, _msg: Message | None = None) -> None:
        if err is not None and self.on_error is not None:
            self.on_error(err)
        with self.lock:
            self.remaining -= 1
            if err is not None and self.error is None:
                self.error = err
            done = self.remaining == 0 or (err is not None and self.error is err)
        if done:
            self.loop.call_soon_threadsafe(self._resolve)

    def skip(self) -> None:
        """One record was refused locally: no ack will come for it."""
        self.on_delivery(None)

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(
                ServiceUnavailable(f"the broker refused a record: {self.error.str()}")
            )
        else:
            self.future.set_result(None)


class AsyncProducer:
    """Wraps ``producer`` with a polling thread; call :meth:`start` and :meth:`close`.

    With a ``factory``, a producer that hit an error it cannot recover from is replaced.
    """

    def __init__(
        self,
        producer: Producer,
        poll_interval_s: float = 0.05,
        factory: Callable[[], Producer] | None = None,
    ):
        self.producer = producer
        self.factory = factory
        self.renewed = 0  # how many times the producer was replaced
        self._poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._suspect = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rw-producer-poll", daemon=True)

    def start(self) -> AsyncProducer:
        """Start the polling thread."""
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(self._poll_interval_s)
            if self._suspect.is_set() and self.factory is not None:
                self._renew(self.factory)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal() or err.code() in _RENEW_ON:
            self._suspect.set()

    def _renew(self, factory: Callable[[], Producer]) -> None:
        """Swap in a new producer (on the polling thread); fail what the old one holds."""
        try:
            fresh = factory()
        except Exception:  # no broker address resolves right now: try again next poll
            log.exception("could not create a new producer")
            return
        old, self.producer = self.producer, fresh
        self._suspect.clear()
        self.renewed += 1
        log.warning("the broker lost this producer's state; a new producer replaces it")
        with contextlib.suppress(KafkaException, NotImplementedError):
            old.purge()  # queued records fail now (their batches answer 503) instead of hanging
        old.poll(0)

    async def produce(
        self, topic: str, records: Sequence[tuple[bytes, bytes]], timeout_s: float
    ) -> dict[int, str]:
        """Produce ``(key, value)`` records and wait until the broker acknowledged all of them.

        Returns ``{index: reason}`` for records refused locally (too large); every other record
        is stored once this returns. Raises QueueFull (local queue full) or ServiceUnavailable
        (a delivery failed or the acks took longer than ``timeout_s``); then some records may
        already be stored, so a caller may only report success after a normal return.
        """
        refused: dict[int, str] = {}
        if not records:
            return refused
        batch = _Batch(asyncio.get_running_loop(), len(records), self._on_error)
        target = self.producer  # one producer per batch, even if it is replaced meanwhile
        for index, (key, value) in enumerate(records):
            try:
                target.produce(topic, value, key, on_delivery=batch.on_delivery)
            except BufferError as exc:
                batch.future.cancel()  # acks of the records already queued are not awaited
                raise QueueFull(
                    "the ingest queue is full (the broker is slower than the producers); "
                    "retry in a second"
                ) from exc
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    batch.future.cancel()
                    raise ServiceUnavailable(
                        f"could not produce to {topic}: {error.str()}"
                    ) from exc
                refused[index] = f"the record is {len(value)} bytes, more than Kafka accepts"
                batch.skip()
        try:
            await asyncio.wait_for(batch.future, timeout_s)
        except TimeoutError as exc:
            self._suspect.set()  # acks that never come: the next batch gets a new producer
            raise ServiceUnavailable(
                f"the broker did not acknowledge the records within {timeout_s:g} s; "
                "retry in a moment (some of them may already be stored)"
            ) from exc
        return refused

    async def close(self, timeout_s: float = 10.0) -> int:
        """Stop polling and flush what is queued; return how many records were left unsent."""
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        return int(await asyncio.to_thread(self.producer.flush, timeout_s))
