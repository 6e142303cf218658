"""The faust agents' batches (the learner's, the monitor's) guarded as the scoring loop guards
its own (streams/batching.py), with the same primitives: a worker never dies on one record,
and every record is handled or dead-lettered with its reason.

* A batch whose handler raises is split in halves until each record it raises on is alone
  (:func:`streams.records.isolate`): that record goes to ``deadletter`` with the error and its
  origin (topic, partition, offset) and counts once as a data-quality reject
  (``on_failed``: :meth:`streams.rejects.RejectCounter.count_failed`); the others are handled.
* An outage (:data:`streams.batching.TRANSIENT`: Redis or Kafka unavailable) says nothing
  about the records: the batch is handled again, whole, after an exponential backoff, for as
  long as it lasts; so is the sending of outputs the broker did not acknowledge.
* faust's ``take_events`` acknowledges a batch's events when the agent asks for the next batch,
  or stops, whether or not they were handled; so the agent holds a reference on each of its
  messages (:meth:`Guard.run`) and lets go once the batch's outputs are acknowledged: no
  offset is committed past a batch that was not handled, even when the worker stops mid-retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import faust

from riverwatch.core.metrics import BATCH_RETRIES, EVENTS
from riverwatch.streams.batching import BACKOFF_MAX_S, BACKOFF_MIN_S, TRANSIENT
from riverwatch.streams.records import (
    Handler,
    Out,
    Record,
    dead_lettered,
    from_events,
    isolate,
    raised_on,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
OnFailed = Callable[[list[Record], list[Record]], object]


class Guard:
    """One agent's batches of the bare ``topic`` (``name``: the agent's, in logs and metrics)."""

    def __init__(self, name: str, topic: str, t_dead: str, worker: str):
        self.name, self.topic, self.t_dead, self.worker = name, topic, t_dead, worker
        self.backoff_min_s = BACKOFF_MIN_S

    def isolated(
        self, handler: Handler, records: list[Record], on_failed: OnFailed | None = None
    ) -> list[Out]:
        """``handler(records)``'s outputs, with a dead letter in place of the outputs of each
        record it raised on (``on_failed(records, those)`` counts them); raises a transient
        error as it is. Synchronous: call it in the thread that owns the handler's state."""
        failed: list[Record] = []
        outs = isolate(handler, records, lambda r, e: self._poison(r, e, failed), TRANSIENT)
        if failed and on_failed is not None:
            on_failed(records, failed)
        # its dead letters (parse rejects, poison records), counted once it is handled
        EVENTS.labels(topic=self.topic, outcome="deadletter").inc(dead_lettered(outs, self.t_dead))
        return outs

    def _poison(self, rec: Record, exc: Exception, failed: list[Record]) -> Out:
        failed.append(rec)
        log.error(
            "%s: %s[%d]@%d dead-lettered: %r", self.name, rec.topic, rec.partition, rec.offset, exc
        )
        return raised_on(self.t_dead, rec, exc, self.worker)

    async def run(
        self,
        app: faust.App,
        events: Sequence[Any],
        handle: Callable[[list[Record]], Awaitable[list[Out]]],
    ) -> list[Out]:
        """Handle a batch of faust ``events`` (``handle``: :meth:`isolated` in the owner
        thread), retried while an outage lasts, and send its outputs, retried until the broker
        acknowledges them all; then let the events be committed. Returns the outputs."""
        for e in events:  # held: take_events' own ack no longer commits them
            e.message.incref()
        records = from_events(list(events))
        outs = await self._retry("transient", TRANSIENT, lambda: handle(records))
        await self._retry("delivery", (Exception,), lambda: send(app, outs))
        for e in events:
            e.ack()
        return outs

    async def _retry(
        self,
        reason: str,
        errors: tuple[type[BaseException], ...],
        attempt: Callable[[], Awaitable[T]],
    ) -> T:
        delay = self.backoff_min_s
        while True:
            try:
                return await attempt()
            except errors as exc:
                BATCH_RETRIES.labels(stage=self.name, reason=reason).inc()
                log.warning("%s: batch not done (%s), retried in %.1f s: %r", self.name,
                            reason, delay, exc)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)


async def send(app: faust.App, outs: list[Out]) -> None:
    """Send ``outs`` with the app's producer and wait until the broker acknowledged them all."""
    acks = [await app.producer.send(o.topic, o.key, o.value, None, None, None) for o in outs]
    await asyncio.gather(*acks)
