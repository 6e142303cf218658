"""Transport-neutral records in and out of the stream handlers, and dead-lettering."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import orjson
from pydantic import BaseModel

from riverwatch.core.errors import InvalidEvent
from riverwatch.core.events import Label, parse_event
from riverwatch.core.limits import EventLimits
from riverwatch.core.rejects import NOT_VALIDATED, prefix, reject_keys

E = TypeVar("E", bound=BaseModel)
log = logging.getLogger(__name__)


class Record(NamedTuple):
    """One consumed Kafka record, as a handler sees it (a NamedTuple: built once per record
    consumed, at a third of a frozen dataclass's cost)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


class Out(NamedTuple):
    """One record a handler wants produced (a NamedTuple, as :class:`Record`)."""

    topic: str
    key: bytes | None
    value: bytes


Bad = list[tuple[Record, str]]  # records that failed to parse, with the reason


def iso(epoch: float) -> str:
    """An epoch as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


# A dead letter must fit where its record came from. A record near the broker's size limit,
# decoded with replacement (an undecodable byte becomes three) and quoted as JSON, would not:
# the broker would refuse it for good and the loop could never hand its record over. So the
# dead letter keeps at most this many bytes of the record's key and value (at most six bytes of
# JSON each: well under the 1 MB a broker takes by default), says how long they were, and its
# origin (topic, partition, offset) is where to read the record whole.
DEAD_LETTER_MAX_BYTES = 64 * 1024
ERROR_MAX_CHARS = 4096


def _text(raw: bytes) -> str:
    return raw[:DEAD_LETTER_MAX_BYTES].decode("utf-8", "replace")


def dead_letter(topic: str, rec: Record, error: str, worker: str) -> Out:
    """The ``deadletter`` record for ``rec`` (see core.outputs.DeadLetter), bounded in size
    whatever ``rec`` holds (:data:`DEAD_LETTER_MAX_BYTES`)."""
    value = rec.value or b""
    body = {
        "origin_topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "key": _text(rec.key) if rec.key is not None else None,
        "value": _text(value),
        "value_bytes": len(value),
        "truncated": len(value) > DEAD_LETTER_MAX_BYTES
        or len(rec.key or b"") > DEAD_LETTER_MAX_BYTES,
        "error": error[:ERROR_MAX_CHARS],
        "worker": worker,
        "timestamp": iso(time.time()),
    }
    return Out(topic, rec.key[:DEAD_LETTER_MAX_BYTES] if rec.key else rec.key, orjson.dumps(body))


def raised_on(topic: str, rec: Record, exc: BaseException, worker: str) -> Out:
    """The ``deadletter`` record for ``rec``, which a handler raised on alone (see
    :func:`isolate`): the error, its type first, is the reason."""
    return dead_letter(topic, rec, f"{type(exc).__name__}: {exc}", worker)


def raw_topic(app: Any, topic: str) -> Any:
    """A faust topic whose keys and values stay raw bytes (handlers validate them themselves)."""
    return app.topic(
        topic, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
    )


def from_events(events: list[Any]) -> list[Record]:
    """faust events (from ``stream.take_events``) as transport-neutral records."""
    return [
        Record(
            e.message.topic,
            e.message.partition,
            e.message.offset,
            e.message.key,
            e.message.value,
            int(e.message.timestamp * 1000),
        )
        for e in events
    ]


def parse_batch(
    cls: type[E],
    records: list[Record],
    limits: EventLimits | None = None,
    broken: list[set[str]] | None = None,
    topic: str = "transactions",
    now: float | None = None,
) -> tuple[list[tuple[Record, E]], Bad]:
    """Each record parsed as ``cls`` within ``limits`` (the settings' bounds; the defaults
    without) and not more than their ``max_future_skew_s`` ahead of ``now`` (the wall clock,
    read once per batch, when None); the ones that are not, with why (``field: reason``, to
    dead-letter). Never raises for one record. ``broken``, when given, gets what each bad
    record broke (:func:`core.rejects.reject_keys` as ``topic``'s), in the order of the bad
    ones."""
    parsed: list[tuple[Record, E]] = []
    bad: Bad = []
    clock = time.time() if now is None else now
    for rec in records:
        try:
            parsed.append((rec, parse_event(cls, rec.value or b"", limits, clock)))
        except InvalidEvent as exc:
            bad.append((rec, str(exc)))
            if broken is not None:
                broken.append(reject_keys(exc, cls.model_fields, topic))
        except Exception as exc:  # a validator's bug must not stop the worker
            log.exception("could not validate %s[%s]@%s", rec.topic, rec.partition, rec.offset)
            bad.append((rec, f"(record): could not be validated: {type(exc).__name__}"))
            if broken is not None:
                broken.append({prefix(topic) + NOT_VALIDATED})
    return parsed, bad


def dead_letters(topic: str, bad: Bad, worker: str) -> list[Out]:
    """The ``deadletter`` records of :func:`parse_batch`'s rejects."""
    return [dead_letter(topic, rec, why, worker) for rec, why in bad]


def dead_lettered(outs: list[Out], t_dead: str) -> int:
    """How many of a handled batch's outputs ``outs`` are dead letters (to ``t_dead``): its
    parse rejects, its poison records and whatever else its handler dead-lettered.

    The batch loop and the agents' guard count this in ``riverwatch_events_total{outcome=
    "deadletter"}`` once :func:`isolate` returned, never inside a handler: a batch that is split,
    or retried whole after an outage, drops the outputs of its failed attempts, so each record
    counts once per delivery. A batch delivered again (after a crash before its commit, or
    consumed again because the broker did not acknowledge its outputs) counts them again, as
    its dead letters are produced again: at least once."""
    return sum(1 for o in outs if o.topic == t_dead)


def parse_labels(
    records: list[Record],
    limits: EventLimits | None = None,
    broken: list[set[str]] | None = None,
    now: float | None = None,
    origins: dict[str, Record] | None = None,
) -> tuple[dict[str, Label], Bad]:
    """The batch's labels by event id (the first of duplicates in the batch) and the records
    that are not a Label, with why (and, into ``broken``, what each broke; into ``origins``,
    each label's record). Shared by the learner and the monitor, which both read ``labels``;
    only the learner dead-letters (and counts) the bad ones, so each gets one dead letter."""
    parsed, bad = parse_batch(Label, records, limits, broken, "labels", now)
    labels: dict[str, Label] = {}
    for rec, lab in parsed:
        if lab.event_id not in labels:
            labels[lab.event_id] = lab
            if origins is not None:
                origins[lab.event_id] = rec
    return labels, bad


Handler = Callable[[list[Record]], list[Out]]


def isolate(
    handler: Handler,
    records: list[Record],
    poison: Callable[[Record, Exception], Out],
    transient: tuple[type[BaseException], ...] = (),
) -> list[Out]:
    """``handler(records)``; if it raises, split the batch in halves, recursively, until the
    records that make it raise are alone: each of those becomes ``poison(record, error)`` (its
    dead letter) and the others are handled normally, in their order.

    An error of a ``transient`` type (Redis or Kafka unavailable) says nothing about the records,
    so it is raised as it is, for the caller to retry the whole batch later. Costs about
    ``2 * k * log2(n)`` extra handler calls for ``k`` poison records among ``n``.

    >>> def handler(recs):
    ...     if any(r.value == b"bad" for r in recs):
    ...         raise ValueError("bad value")
    ...     return [Out("out", None, r.value) for r in recs]
    >>> recs = [Record("in", 0, i, None, v) for i, v in enumerate([b"a", b"bad", b"c"])]
    >>> [o.value for o in isolate(handler, recs, lambda r, e: Out("dead", None, b"%d" % r.offset))]
    [b'a', b'1', b'c']
    """
    try:
        return handler(records)
    except transient:
        raise
    except Exception as exc:
        if len(records) == 1:
            return [poison(records[0], exc)]
        mid = len(records) // 2
        return isolate(handler, records[:mid], poison, transient) + isolate(
            handler, records[mid:], poison, transient
        )
