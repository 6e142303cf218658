"""The online model's keeping, for the learner (streams/learning.py): restore, publish,
snapshot, catch up, and reset.

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
import time
from collections.abc import Mapping
from typing import Any

import redis
from river.compose import Pipeline

from riverwatch.context_parts import WorkerConfig
from riverwatch.core.errors import InvalidEvent, ModelError
from riverwatch.core.events import parse_event
from riverwatch.core.metrics import MODEL_VERSION
from riverwatch.core.names import Names
from riverwatch.core.outputs import Control
from riverwatch.models import online
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.models.serving import ONLINE
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.offline_rows import warm_rows
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.control import answer
from riverwatch.streams.records import Out, iso

log = logging.getLogger(__name__)


class OnlineModel:
    """The learner's model and its version: restored, published, snapshotted, caught up with
    another learner's, reset on request. :class:`streams.learning.Learner` sets the state."""

    r: redis.Redis
    names: Names
    cfg: WorkerConfig
    snapshots: SnapshotStore
    offline: OfflineStore | None
    worker: str
    model: Pipeline
    version: int
    newest_epoch: float | None
    unsaved: int
    saved_at: float

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
        before the newest labeled event (learned since start or stored), at most the newest
        ``reset_warm_max_rows`` of them, in event order.
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
        X, y = warm_rows(self.offline, window, self.cfg.reset_warm_max_rows)
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
