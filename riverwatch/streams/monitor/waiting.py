"""Labels the monitor read before their event's feature row existed wait for it.

A label can overtake its transaction (a replay reads ``labels`` beside ``transactions``, a
scorer may have a backlog): its feature row, which the monitor joins it to, is not written
yet. The monitor keeps such a label (its value and time, and when it started waiting) instead
of dropping it, and joins it when the row is there: when the event's score comes through the
monitor's own ``scores`` (the scorer writes the row before it produces the score), or, about
every :data:`streams.early.RETRY_S`, by reading the rows of every waiting label (a score
another monitor read). A label still without its row after ``early_label_grace_s``, or one
beyond ``early_labels_max`` waiting, is dropped and counted (``labels_unjoined``), as a label
of an event never scored. The learner does the same for learning (streams/early.py).

Kept in Redis (``monitor:labels:waiting``: event id -> label, time, since when), changes
written with the batch that made them, in the monitor's MULTI (:meth:`Monitor.publish`); a
failed write is written again with the next.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import redis

from riverwatch.core.names import Names
from riverwatch.monitors.core.config import Row
from riverwatch.streams.early import RETRY_S
from riverwatch.streams.rows import UnusableRow, monitorable

log = logging.getLogger(__name__)

Waiting = tuple[int, float, float]  # label, label time (epoch), waiting since (wall time)


class WaitingLabels:
    """The labels that wait for their feature row (see the module)."""

    def __init__(self, client: redis.Redis, names: Names, grace_s: float, max_labels: int):
        self.r = client
        self.names = names
        self.key = names.monitor("labels:waiting")
        self.grace_s, self.max_labels = grace_s, max_labels
        self.labels: dict[str, Waiting] = {}
        self._set: dict[Any, bytes] = {}  # changes not written yet (event id: str)
        self._gone: set[str] = set()
        self.checked_at = -math.inf  # when the rows of all were last read (monotonic)
        saved: dict[bytes, bytes] = self.r.hgetall(self.key)  # type: ignore[assignment]
        for field, raw in saved.items():
            eid = field.decode("utf-8", "replace")
            try:
                label, at, since = orjson.loads(raw)
                self.labels[eid] = (int(label), float(at), float(since))
            except (ValueError, TypeError):
                log.error("monitor: dropping an unreadable waiting label %r", eid)
                self._gone.add(eid)

    def add(self, labels: Mapping[str, tuple[int, float]]) -> int:
        """Let ``labels`` (event id -> label, time) wait; returns how many had no room."""
        now = time.time()
        room = max(0, self.max_labels - len(self.labels)) if self.grace_s > 0 else 0
        for eid, (label, at) in list(labels.items())[:room]:
            self.labels[eid] = (label, at, now)
            self._set[eid] = orjson.dumps([label, at, now])
            self._gone.discard(eid)
        return max(0, len(labels) - room)

    def take(self, eids: Iterable[str]) -> dict[str, tuple[int, float]]:
        """The waiting labels of ``eids``, which no longer wait."""
        out = {}
        for eid in eids:
            got = self.labels.pop(eid, None)
            if got is not None:
                out[eid] = got[:2]
                self._set.pop(eid, None)
                self._gone.add(eid)
        return out

    def due(self) -> tuple[dict[str, tuple[Row, int, float]], list[str]]:
        """Every :data:`RETRY_S`: the waiting labels whose rows are stored now, as the core's
        label pairs by event id, and the event ids of those to drop (waited past the grace
        period, or a row the monitor cannot take). Nothing when not due or none waits. Takes
        none of them: :meth:`take` them once nothing can fail before the core takes them in."""
        now = time.monotonic()
        if not self.labels or now - self.checked_at < RETRY_S:
            return {}, []
        self.checked_at = now
        eids = list(self.labels)
        raw = self.r.mget([self.names.feature_row(e) for e in eids])
        late: dict[str, tuple[Row, int, float]] = {}
        drop: list[str] = []
        wall = time.time()
        for eid, v in zip(eids, raw, strict=True):
            label, at, since = self.labels[eid]
            if v is None:
                if wall - since >= self.grace_s:
                    drop.append(eid)
                continue
            try:
                late[eid] = (monitorable(eid, v, features=False), label, at)
            except UnusableRow as exc:  # its record is the learner's to dead-letter
                log.error("monitor: waiting label dropped: %s", exc)
                drop.append(eid)
        return late, drop

    def save(self, p: redis.client.Pipeline) -> None:
        """Add the changes not written yet to ``p`` (the monitor's MULTI)."""
        if self._set:
            p.hset(self.key, mapping=dict(self._set))
        if self._gone:
            p.hdel(self.key, *sorted(self._gone))

    def written(self, ok: bool) -> None:
        """The pipeline of :meth:`save` ran (``ok``): its changes are written."""
        if ok:
            self._set, self._gone = {}, set()
