"""An asyncio face on a confluent-kafka producer: produce a batch, await the broker's acks.

A background thread polls the producer, so delivery callbacks run there; each batch has one
asyncio future that the last callback resolves through ``call_soon_threadsafe``.

An idempotent producer does not survive a broker that restarted empty (the embedded broker
keeps nothing): its producer id is unknown there, librdkafka bumps the epoch of that unknown id
forever and every record times out, for good. So after a fatal error, an unknown producer id,
a delivery timeout or acks that did not come in time, the polling thread replaces it with a
new producer from ``factory`` (what the old one still holds is purged and answered as failed).

While every broker is down (:class:`BrokerHealth`, fed by the client's ``error_cb``), a batch
is refused at once instead of waiting for acks that cannot come, and the batches waiting for
acks are answered as failed then and there (their records may still reach the broker later: a
client that retries sends them twice, which the scorer absorbs by ``event_id``). The polling
thread asks the broker for metadata until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from riverwatch.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)
# Delivery errors after which the producer is replaced rather than trusted again.
_RENEW_ON = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._FATAL,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_EPOCH,
        # a restarted Tansu (memory only) answers the old producer id with this, every time
        KafkaError.PRODUCER_FENCED,
    }
)


class QueueFull(ServiceUnavailable):
    """The producer's local queue is full: the broker is slower than the callers."""


class BrokerDown(ServiceUnavailable):
    """No broker answers: the records cannot be stored now."""


class BrokerHealth:
    """Whether every broker is down, as the producer's client reports it.

    :meth:`on_error` is the producer's ``error_cb`` (called on the polling thread): librdkafka
    reports ``_ALL_BROKERS_DOWN`` when it lost its connection to every broker, and nothing when
    one comes back, so :class:`AsyncProducer` probes for that (:meth:`mark_up`).
    """

    def __init__(self) -> None:
        self.down_since: float | None = None  # time.monotonic() when it went down
        self.listeners: list[Callable[[], None]] = []

    def on_error(self, err: KafkaError) -> None:
        """The client's ``error_cb``."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN and self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("no broker answers (%s); ingest answers 503 until one does", err.str())
            for listener in self.listeners:
                listener()

    def mark_up(self) -> None:
        """A broker answered again."""
        if self.down_since is not None:
            log.warning("the broker answers again after %.1f s", self.down_since_s())
        self.down_since = None

    def down(self) -> bool:
        """Whether every broker is down now."""
        return self.down_since is not None

    def down_since_s(self) -> float:
        """Seconds since every broker went down (0 when one answers)."""
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since


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

    def fail(self, reason: str) -> None:
        """Answer the batch as failed now, whatever acks come later."""
        self.loop.call_soon_threadsafe(self._fail, reason)

    def _fail(self, reason: str) -> None:
        if not self.future.done():
            self.future.set_exception(ServiceUnavailable(reason))

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

    With a ``factory``, a producer that hit an error it cannot recover from is replaced. With a
    ``health`` that the producers' ``error_cb`` feeds, batches fail fast while no broker answers.
    """

    def __init__(
        self,
        producer: Producer,
        poll_interval_s: float = 0.05,
        factory: Callable[[], Producer] | None = None,
        health: BrokerHealth | None = None,
        probe_timeout_s: float = 0.5,
    ):
        self.producer = producer
        self.factory = factory
        self.health = health or BrokerHealth()
        self.health.listeners.append(self._fail_pending)
        self.renewed = 0  # how many times the producer was replaced
        self._poll_interval_s = poll_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._stop = threading.Event()
        self._suspect = threading.Event()
        self._pending: set[_Batch] = set()  # batches waiting for acks
        self._pending_lock = threading.Lock()
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
            if self.health.down():
                self._probe()

    def _probe(self) -> None:
        """Ask for metadata (blocks up to the probe timeout); the broker is up if it answers."""
        try:
            self.producer.list_topics(timeout=self._probe_timeout_s)
        except KafkaException:
            return
        self.health.mark_up()

    def _fail_pending(self) -> None:
        """Every broker went down: answer the batches waiting for acks now (503)."""
        with self._pending_lock:
            pending = list(self._pending)
        for batch in pending:
            batch.fail(
                "the broker became unreachable before it acknowledged the records; retry in "
                "a second (some of them may already be stored)"
            )

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
        self.refuse_if_down()
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
                    self._on_error(error)  # a producer in a fatal state refuses at once
                    batch.future.cancel()
                    raise ServiceUnavailable(
                        f"could not produce to {topic}: {error.str()}"
                    ) from exc
                refused[index] = f"the record is {len(value)} bytes, more than Kafka accepts"
                batch.skip()
        with self._pending_lock:
            self._pending.add(batch)
        if self.health.down():  # it went down while the records were queued
            self._fail_pending()
        try:
            await asyncio.wait_for(batch.future, timeout_s)
        except TimeoutError as exc:
            self._suspect.set()  # acks that never come: the next batch gets a new producer
            raise ServiceUnavailable(
                f"the broker did not acknowledge the records within {timeout_s:g} s; "
                "retry in a moment (some of them may already be stored)"
            ) from exc
        finally:
            with self._pending_lock:
                self._pending.discard(batch)
        return refused

    def refuse_if_down(self) -> None:
        """Raise BrokerDown while no broker answers (before any work is done for a request)."""
        if self.health.down():
            raise BrokerDown(
                f"the broker has not answered for {self.health.down_since_s():.0f} s; "
                "nothing was stored; retry in a second"
            )

    async def close(self, timeout_s: float = 10.0) -> int:
        """Stop polling and flush what is queued; return how many records were left unsent."""
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        return int(await asyncio.to_thread(self.producer.flush, timeout_s))
