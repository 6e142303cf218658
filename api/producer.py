"""An asyncio face on a confluent-kafka producer: produce a batch, await the broker's acks.

A background thread polls the producer, so delivery callbacks run there; each batch has one
asyncio future that the last callback resolves through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.errors import ServiceUnavailable


class QueueFull(ServiceUnavailable):
    """The producer's local queue is full: the broker is slower than the callers."""


class _Batch:
    """Counts the outstanding acks of one batch; the last one resolves the future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int):
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.remaining = size
        self.error: KafkaError | None = None
        self.lock = threading.Lock()

    def on_delivery(self, err: KafkaError | None, _msg: Message | None = None) -> None:
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
    """Wraps ``producer`` with a polling thread; call :meth:`start` and :meth:`close`."""

    def __init__(self, producer: Producer, poll_interval_s: float = 0.05):
        self.producer = producer
        self._poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rw-producer-poll", daemon=True)

    def start(self) -> AsyncProducer:
        """Start the polling thread."""
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(self._poll_interval_s)

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
        batch = _Batch(asyncio.get_running_loop(), len(records))
        for index, (key, value) in enumerate(records):
            try:
                self.producer.produce(topic, value, key, on_delivery=batch.on_delivery)
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
