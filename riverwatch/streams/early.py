"""Labels that arrive before their transaction is scored wait for its feature row.

A label can overtake its transaction: a replay or backfill reads ``labels`` and
``transactions`` at once (and ``labels`` is the smaller), a scorer may have a backlog, a
producer may send both together. The feature row the label joins (``Names.feature_row``) is
then not written yet. Such a label is parked in ``Names.learner_early`` (a hash: event id ->
when it was parked, wall time, its partition and offset, and its record as consumed) and the
learner's timer retries the parked ones about every :data:`RETRY_S` (streams/learning.py),
until its row appears (learned), ``early_label_grace_s`` has passed (counted ``unknown``, as a
label for an event never scored), or another label of the event was learned meanwhile
(``duplicate``). At most ``early_labels_max`` wait: beyond that, a label whose row is missing
counts as unknown at once, so labels of events that will never be scored cannot grow Redis
without bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from riverwatch.streams.records import Record

RETRY_S = 1.0  # how often the learner's timer retries the parked labels


def park(rec: Record, at: float) -> bytes:
    """The parked form of ``rec`` (a label record) parked at wall time ``at``.

    >>> park(Record("labels", 0, 7, b"e1", b'{"event_id":"e1"}'), 12.5)
    b'12.5 0 7 {"event_id":"e1"}'
    """
    return b"%r %d %d " % (at, rec.partition, rec.offset) + (rec.value or b"")


def unpark(topic: str, parked: Mapping[Any, Any]) -> tuple[list[Record], dict[str, float]]:
    """The parked labels ``parked`` (the hash's fields and values) as records of ``topic``, in
    their original order, and when each was parked, by event id.

    >>> recs, at = unpark("labels", {b"e1": park(Record("labels", 0, 7, b"k", b"{}"), 12.5)})
    >>> [(r.partition, r.offset, r.key, r.value) for r in recs], at
    ([(0, 7, b'e1', b'{}')], {'e1': 12.5})
    """
    out: list[tuple[tuple[int, int], Record]] = []
    at: dict[str, float] = {}
    for eid, raw in parked.items():
        when, part, offset, value = raw.split(b" ", 3)
        rec = Record(topic, int(part), int(offset), eid, value)
        out.append(((rec.partition, rec.offset), rec))
        at[eid.decode()] = float(when)
    out.sort(key=lambda pair: pair[0])
    return [rec for _, rec in out], at


class Settled(NamedTuple):
    """What becomes of a batch's labels whose row is missing or which were parked (indexes
    into the batch); the others, with a row and never learned, are learned."""

    park: list[int]  # labels just consumed that wait from now on
    done: list[int]  # parked labels that leave the hash (learned, duplicate or given up)
    duplicate: int  # learned already, or another label of the event waits already
    unknown: int  # no row, and no room or no time left to wait for it


def settle(
    rows: Sequence[object],
    seen: Sequence[object],
    waiting: Sequence[object] | None,
    parked_at: Sequence[float] | None,
    now: float,
    grace_s: float,
    room: int,
) -> Settled:
    """Sort a batch's labels by their feature ``rows`` and ``seen`` markers (None: missing).

    Labels just consumed (``parked_at`` None) come with ``waiting`` (the parked label of each
    event, None: none) and ``room`` (how many more may wait); a retried batch of parked labels
    with when each was parked.

    >>> settle([b"row", None, None, None], [None, b"1", None, None], [None, None, b"w", None],
    ...        None, 100.0, 600.0, 5)
    Settled(park=[3], done=[], duplicate=2, unknown=0)
    >>> settle([None, None], [None, None], [None, None], None, 100.0, 600.0, 1).unknown
    1
    >>> settle([b"row", None, None], [None, None, None], None, [0.0, 0.0, 200.0], 700.0, 600.0, 0)
    Settled(park=[], done=[0, 1], duplicate=0, unknown=1)
    """
    park: list[int] = []
    done: list[int] = []
    dup = unknown = 0
    for i, (row, was_seen) in enumerate(zip(rows, seen, strict=True)):
        if parked_at is not None and (row is not None or was_seen is not None):
            done.append(i)
        if was_seen is not None:
            dup += 1
        elif row is not None:
            continue
        elif waiting is not None and waiting[i] is not None:
            dup += 1
        elif parked_at is None and len(park) < room and grace_s > 0:
            park.append(i)
        elif parked_at is None or now - parked_at[i] >= grace_s:
            unknown += 1
            if parked_at is not None:
                done.append(i)
    return Settled(park, done, dup, unknown)
