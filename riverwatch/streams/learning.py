"""The label handler: join each delayed label to its stored feature row and learn from it.

This is the online model's single writer: the ``labels`` topic has one partition, so one
worker of the group owns it at a time and every scorer reloads the snapshots it publishes.
A label that arrives before its transaction was scored waits for its feature row, retried
about once a second (streams/early.py). A label for an unknown or expired event (still
without a row after ``RIVERWATCH_EARLY_LABEL_GRACE_S``), and a duplicate label, are counted,
not errors. A
label whose feature row cannot be learned from raises (streams/rows.py) before anything of its
batch is learned, so its agent can split the batch to dead-letter it (streams/guard.py); a
batch is learned only after its labels are marked seen, so one handled again after Redis failed
is not learned twice.

Being the single writer, the learner also publishes the model and carries out ``reset``
requests for it (streams/online_model.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import redis

from riverwatch.context import Context
from riverwatch.core.events import Label
from riverwatch.core.metrics import EVENTS
from riverwatch.models import online
from riverwatch.models.features import WINDOWS_DAYS
from riverwatch.models.serving import ONLINE
from riverwatch.stores.features import Increments, RedisFeatureStore
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.offline_rows import labeled_row
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.early import RETRY_S, park, settle, unpark
from riverwatch.streams.online_model import OnlineModel
from riverwatch.streams.records import Out, Record, dead_letters, parse_labels
from riverwatch.streams.rejects import RejectCounter
from riverwatch.streams.rows import learnable

log = logging.getLogger(__name__)


class Learner(OnlineModel):
    """Learns the online model from micro-batches of raw ``labels`` records."""

    def __init__(
        self,
        ctx: Context,
        client: redis.Redis,
        store: RedisFeatureStore,
        snapshots: SnapshotStore,
        worker: str,
        offline: OfflineStore | None = None,
    ):
        self.cfg = ctx.worker_config
        self.limits = ctx.limits
        self.r = client
        self.names = ctx.names
        self.store = store
        self.snapshots = snapshots
        self.offline = offline
        self.worker = worker
        self.spec = ctx.spec
        self.t_dead = self.names.topic("deadletter")
        self.t_labels = self.names.topic("labels")
        self.retried_at = -math.inf  # when the parked labels were last retried (monotonic)
        self.rejects = RejectCounter(client, self.names, "labels", count_valid=True)
        self.model, self.version = self._restore()
        self.newest_epoch: float | None = None  # of the labeled events learned since start
        self.unsaved = 0
        self.saved_at = time.monotonic()

    def process(
        self, records: list[Record], parked: Mapping[str, float] | None = None
    ) -> list[Out]:
        """Learn from a batch of labels, then answer pending resets; snapshot when due.

        ``parked``: the batch is labels that waited for their transaction (streams/early.py),
        by event id when each was parked. Returns dead letters and the answers to reset requests.
        """
        # a duplicate within the batch is ignored
        broken: list[set[str]] = []
        origins: dict[str, Record] = {}
        labels, bad = parse_labels(records, self.limits, broken, origins=origins)
        if parked is None:  # the monitor's data-quality counters (core.rejects), once a record
            self.rejects.count(records, zip((rec for rec, _ in bad), broken, strict=True))
        else:  # parsed when they were parked: only a change of the limits can refuse one now
            self.unpark([rec for rec, _ in bad])
        outs = dead_letters(self.t_dead, bad, self.worker)
        if labels:
            resets = self._learn(
                list(labels.values()),
                duplicates_in_batch=len(records) - len(outs) - len(labels),
                origins=origins,
                parked=parked,
            )
            outs += self._answer_resets(resets)
        else:
            outs += self.check_resets()
        self.maybe_snapshot()
        return outs

    def parked_due(self) -> tuple[list[Record], dict[str, float]]:
        """The parked labels (streams/early.py), when a retry is due: every :data:`RETRY_S`."""
        now = time.monotonic()
        if now - self.retried_at < RETRY_S:
            return [], {}
        self.retried_at = now
        return unpark(self.t_labels, self.r.hgetall(self.names.learner_early()))

    def unpark(self, records: list[Record]) -> None:
        """Forget the parked labels of ``records`` (dead-lettered on a retry)."""
        if records:
            self.r.hdel(self.names.learner_early(), *(rec.key or b"" for rec in records))

    def _learn(
        self,
        labels: list[Label],
        duplicates_in_batch: int,
        origins: Mapping[str, Record],
        parked: Mapping[str, float] | None,
    ) -> Mapping[Any, Any]:
        """Learn ``labels``; return the pending reset requests, read in the same round trip.

        A label whose feature row is missing waits for it (streams/early.py): ``parked`` says
        when each of a retried batch's labels was parked (None: labels just consumed).
        """
        eids = [lab.event_id for lab in labels]
        early = self.names.learner_early()
        p = self.r.pipeline(transaction=False)
        p.mget([self.names.feature_row(e) for e in eids])
        p.mget([self.names.label_seen(e) for e in eids])
        p.hgetall(self.names.learner_reset())
        p.get(self.names.model_version(ONLINE))
        if parked is None:
            p.hmget(early, eids)
            p.hlen(early)
        got = p.execute()
        rows, seen, resets, stored = got[:4]
        self._catch_up(stored)
        fresh = [
            (lab, *learnable(lab.event_id, raw))  # raises on a row it cannot learn from, ...
            for lab, raw, was_seen in zip(labels, rows, seen, strict=True)
            if was_seen is None and raw is not None
        ]  # ... before anything is learned: the batch can be split to find its label
        waits = settle(
            rows,
            seen,
            got[4] if parked is None else None,
            None if parked is None else [parked[e] for e in eids],
            time.time(),
            self.cfg.early_label_grace_s,
            self.cfg.early_labels_max - got[5] if parked is None else 0,
        )
        dup, unknown = waits.duplicate, waits.unknown
        learned = len(fresh)
        inc = Increments()
        history: list[dict[str, object]] = []
        w = self.r.pipeline(transaction=True)
        for lab, row, x in fresh:  # x: by the row's own columns (attr_* included)
            history.append(labeled_row(row, x, lab.label))
            if lab.label:
                inc.add("terminal", row["terminal_id"], self.spec.bucket(row["epoch"]), 0, 1.0)
            w.set(self.names.label_seen(lab.event_id), b"1", ex=self.cfg.label_horizon_s)
        if inc.terminal:  # frauds on the transactions' buckets, in the same MULTI
            self.store.write(inc, {}, {}, 0, 0, self.spec.per_day, WINDOWS_DAYS, client=w)
        stats = self.names.learner_stats()
        w.hincrby(stats, "learned", learned)
        w.hincrby(stats, "unknown", unknown)
        w.hincrby(stats, "duplicate", dup + duplicates_in_batch)
        if waits.park:
            now = time.time()
            new: dict[Any, bytes] = {eids[i]: park(origins[eids[i]], now) for i in waits.park}
            w.hset(early, mapping=new)
            w.hincrby(stats, "parked", len(new))
        if waits.done:
            w.hdel(early, *(eids[i] for i in waits.done))
        w.execute()
        # Learned once the labels are marked seen: a batch whose MULTI failed (Redis went
        # away) is handled again later, and its labels must not be learned twice meanwhile.
        for lab, row, x in fresh:
            online.learn(self.model, x, lab.label)
            self.newest_epoch = max(self.newest_epoch or -math.inf, float(row["epoch"]))
        self.unsaved += learned
        if self.offline is not None and history:
            self.offline.append(history)
        EVENTS.labels(topic="labels", outcome="learned").inc(learned)
        EVENTS.labels(topic="labels", outcome="unknown").inc(unknown)
        EVENTS.labels(topic="labels", outcome="duplicate").inc(dup + duplicates_in_batch)
        return resets
