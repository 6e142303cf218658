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

Being the single writer, the learner also carries out ``reset`` requests for the online
model (concept drift on its error stream, see monitors/policy.py). The trainer, which owns
``control``, records them in Redis (``Names.learner_reset``); the learner reads them once per
batch (in the batch's first pipeline) and from the worker's snapshot timer, so a reset is
handled even when no labels flow. A reset replaces the model by a fresh one warmed on the
labeled rows of the last ``RIVERWATCH_RESET_WARM_DAYS`` event days up to the newest label
(from the offline store), publishes it at once under the next version, and answers every
pending request on ``control`` (same ``request_id``) with a ``retrain`` alert. Requests
pending together are served by one reset. They leave Redis once the new snapshot is
published, just before the answers are produced: a worker that dies before that resets
again when its learner restarts (at least once); one that dies in between leaves them
unanswered (ask again).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import redis
from river.compose import Pipeline

from riverwatch.context import Context
from riverwatch.core.errors import InvalidEvent, ModelError
from riverwatch.core.events import Label, parse_event
from riverwatch.core.metrics import EVENTS, MODEL_VERSION
from riverwatch.core.outputs import Control
from riverwatch.models import online
from riverwatch.models.features import FEATURE_NAMES, WINDOWS_DAYS
from riverwatch.models.serving import ONLINE
from riverwatch.stores.features import Increments, RedisFeatureStore
from riverwatch.stores.offline import OfflineStore, labeled_row, warm_rows
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.control import answer
from riverwatch.streams.early import RETRY_S, park, settle, unpark
from riverwatch.streams.records import Out, Record, dead_letters, iso, parse_labels
from riverwatch.streams.rejects import RejectCounter
from riverwatch.streams.rows import learnable

log = logging.getLogger(__name__)


class Learner:
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

    def _restore(self) -> tuple[Pipeline, int]:
        got = self.snapshots.load(ONLINE)
        if got is None:
            return online.make_model(), 0
        try:
            model, _ = online.load_snapshot(got[0])
        except ModelError:
            log.exception("starting a fresh online model: the last snapshot cannot be loaded")
            return online.make_model(), int(got[1])
        return model, int(got[1])

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

    def check_resets(self) -> list[Out]:
        """Carry out pending reset requests, if any (one Redis call); return their answers.

        For the snapshot timer: only the worker that owns ``labels`` may call it.
        """
        p = self.r.pipeline(transaction=False)
        p.hgetall(self.names.learner_reset())
        p.get(self.names.model_version(ONLINE))
        pending, stored = p.execute()
        self._catch_up(stored)
        return self._answer_resets(pending)

    def _catch_up(self, stored: bytes | None) -> None:
        """Continue from the published model when another learner published a newer version.

        The labels partition has one owner at a time, but it moves: a worker that lost it and
        later got it back would otherwise go on from its own stale model, and publish versions
        that exist already.
        """
        if stored is None or int(stored) <= self.version:
            return
        log.warning(
            "online model version %s was published by another learner since this one's %d: "
            "continuing from it",
            stored.decode(),
            self.version,
        )
        self.model, self.version = self._restore()
        self.unsaved = 0

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

    def _answer_resets(self, pending: Mapping[Any, Any]) -> list[Out]:
        """One reset for every request in ``pending`` (request_id -> JSON); their answers."""
        if not pending:
            return []
        requests = []
        for rid, raw in pending.items():
            try:
                requests.append(parse_event(Control, raw))
            except InvalidEvent as exc:  # only the trainer writes here: a bug, not user input
                log.error("dropping unreadable reset request %r: %s", rid, exc)
        if not requests:
            self.r.hdel(self.names.learner_reset(), *pending)
            return []
        ok = True
        try:
            msg, details = self.reset()
        except Exception as exc:  # answer, never leave a request hanging; keep the old model
            log.exception("reset of the online model failed")
            ok, msg, details = False, f"reset failed: {exc!r}", {"version": self.version}
        details["requests"] = sorted(req.request_id for req in requests)
        self.r.hdel(self.names.learner_reset(), *pending)  # after the new model is published
        return [o for req in requests for o in answer(self.names, req, ok, msg, details)]

    def reset(self) -> tuple[str, dict[str, Any]]:
        """Replace the model by a fresh one warmed on recent labeled rows, and publish it.

        The rows: the offline store's (flushed first) within ``reset_warm_days`` of event time
        before the newest labeled event (learned since start or stored), in event order.
        Returns (message, details) for the answer; raises if the model could not be replaced,
        which leaves the current one in place.
        """
        if self.offline is not None:
            self.offline.flush()
        # The store holds every label learned, also before a restart (newest_epoch does not).
        stored = self.offline.latest_epoch() if self.offline is not None else None
        seen = [e for e in (self.newest_epoch, stored) if e is not None]
        newest = max(seen) if seen else None
        window = online.warm_window(newest, self.cfg.reset_warm_days)
        X, y = warm_rows(self.offline, window)
        names = self.offline.feature_set.names if self.offline is not None else FEATURE_NAMES
        previous = self.version
        self._publish(
            f"(reset from {previous}, warmed on {len(y)} rows)",
            online.warmed(X, y, names),
            reset_from=previous,
        )
        # The monitor restarts the online model's error detectors when this count moves.
        self.r.hincrby(self.names.learner_stats(), "resets", 1)
        how = (
            f"warmed on {len(y):,} labeled rows of {iso(window[0])}..{iso(window[1])}"
            if window
            else "from the prior (no warm-up window)"
        )
        msg = f"online model version {previous} -> {self.version}, {how}"
        return msg, {
            "previous_version": previous,
            "version": self.version,
            "warm_rows": len(y),
            "warm_window": list(window) if window else None,
            "warm_days": self.cfg.reset_warm_days,
        }

    def maybe_snapshot(self, force: bool = False) -> bool:
        """Publish a snapshot after ``snapshot_every_labels`` labels or ``snapshot_every_s``."""
        due = time.monotonic() - self.saved_at >= self.cfg.snapshot_every_s
        if self.offline is not None and (due or force):
            self.offline.flush()  # the offline store lags the model by at most one period
        if not self.unsaved:
            return False
        if not (force or due or self.unsaved >= self.cfg.snapshot_every_labels):
            return False
        self._publish(f"after {self.unsaved} new labels")
        return True

    def _publish(self, why: str, model: Pipeline | None = None, **meta: Any) -> None:
        """Publish the model (or ``model``, which then replaces it) as the next version.

        Scorers reload it. If publishing fails, the learner keeps its model and version.
        """
        model = self.model if model is None else model
        version = self.version + 1
        meta = {"version": version, "worker": self.worker, **meta}
        self.snapshots.publish(ONLINE, online.dump_snapshot(model, meta), str(version))
        self.model, self.version = model, version
        MODEL_VERSION.labels(model=ONLINE).set(self.version)
        log.info("online model snapshot %d %s", self.version, why)
        self.unsaved = 0
        self.saved_at = time.monotonic()
