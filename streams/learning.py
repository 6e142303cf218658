"""The label handler: join each delayed label to its stored feature row and learn from it.

This is the online model's single writer: the ``labels`` topic has one partition, so one
worker of the group owns it at a time and every scorer reloads the snapshots it publishes.
A label for an unknown or expired event, and a duplicate label, are counted, not errors.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import redis
from river.compose import Pipeline

from core.errors import InvalidEvent, ModelError
from core.events import Label, parse_event
from core.featurestore import Increments, RedisFeatureStore
from core.metrics import EVENTS, MODEL_VERSION
from core.names import Names
from core.settings import Settings
from core.snapshots import SnapshotStore
from models import online
from models.features import FEATURE_NAMES, FeatureSpec
from models.serving import ONLINE
from streams.offline import OfflineStore
from streams.records import Out, Record, dead_letter

log = logging.getLogger(__name__)


class Learner:
    """Learns the online model from micro-batches of raw ``labels`` records."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        store: RedisFeatureStore,
        snapshots: SnapshotStore,
        worker: str,
        offline: OfflineStore | None = None,
    ):
        self.s = settings
        self.r = client
        self.names = Names(settings.topic_prefix)
        self.store = store
        self.snapshots = snapshots
        self.offline = offline
        self.worker = worker
        self.spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
        self.t_dead = self.names.topic("deadletter")
        self.model, self.version = self._restore()
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

    def process(self, records: list[Record]) -> list[Out]:
        """Learn from a batch of labels; return dead letters. Snapshots when due."""
        outs: list[Out] = []
        labels: dict[str, Label] = {}
        for rec in records:
            try:
                lab = parse_event(Label, rec.value or b"")
            except InvalidEvent as exc:
                outs.append(dead_letter(self.t_dead, rec, str(exc), self.worker))
                continue
            labels.setdefault(lab.event_id, lab)  # a duplicate within the batch is ignored
        EVENTS.labels(topic="labels", outcome="deadletter").inc(len(outs))
        if labels:
            self._learn(
                list(labels.values()), duplicates_in_batch=len(records) - len(outs) - len(labels)
            )
        self.maybe_snapshot()
        return outs

    def _learn(self, labels: list[Label], duplicates_in_batch: int) -> None:
        eids = [lab.event_id for lab in labels]
        p = self.r.pipeline(transaction=False)
        p.mget([self.names.feature_row(e) for e in eids])
        p.mget([self.names.label_seen(e) for e in eids])
        rows, seen = p.execute()
        inc = Increments()
        history: list[dict[str, object]] = []
        learned = unknown = dup = 0
        w = self.r.pipeline(transaction=True)
        for lab, raw, was_seen in zip(labels, rows, seen, strict=True):
            if was_seen is not None:
                dup += 1
                continue
            if raw is None:
                unknown += 1
                continue
            row = orjson.loads(raw)
            x = dict(zip(FEATURE_NAMES, row["x"], strict=True))
            online.learn(self.model, x, lab.label)
            history.append(_labeled_row(row, x, lab.label))
            if lab.label:
                inc.add("terminal", row["terminal_id"], self.spec.bucket(row["epoch"]), 0, 1.0)
            w.set(self.names.label_seen(lab.event_id), b"1", ex=self.s.label_horizon_s)
            learned += 1
        for terminal, buckets in inc.terminal.items():
            key = self.names.entity("terminal", terminal)
            for b, (_, frauds) in buckets.items():
                w.hincrbyfloat(key, f"v:{b}", frauds)
        stats = self.names.learner_stats()
        w.hincrby(stats, "learned", learned)
        w.hincrby(stats, "unknown", unknown)
        w.hincrby(stats, "duplicate", dup + duplicates_in_batch)
        w.execute()
        self.unsaved += learned
        if self.offline is not None and history:
            self.offline.append(history)
        EVENTS.labels(topic="labels", outcome="learned").inc(learned)
        EVENTS.labels(topic="labels", outcome="unknown").inc(unknown)
        EVENTS.labels(topic="labels", outcome="duplicate").inc(dup + duplicates_in_batch)

    def maybe_snapshot(self, force: bool = False) -> bool:
        """Publish a snapshot after ``snapshot_every_labels`` labels or ``snapshot_every_s``."""
        due = time.monotonic() - self.saved_at >= self.s.snapshot_every_s
        if self.offline is not None and (due or force):
            self.offline.flush()  # the offline store lags the model by at most one period
        if not self.unsaved:
            return False
        if not (force or due or self.unsaved >= self.s.snapshot_every_labels):
            return False
        self.version += 1
        blob = online.dump_snapshot(self.model, {"version": self.version, "worker": self.worker})
        self.snapshots.publish(ONLINE, blob, str(self.version))
        MODEL_VERSION.labels(model=ONLINE).set(self.version)
        log.info("online model snapshot %d after %d new labels", self.version, self.unsaved)
        self.unsaved = 0
        self.saved_at = time.monotonic()
        return True


def _labeled_row(row: dict[str, Any], x: dict[str, float], label: int) -> dict[str, Any]:
    """The offline-store row of a labeled event: its scores, groups, features and label."""
    keep = (
        "event_id",
        "card_id",
        "terminal_id",
        "epoch",
        "score",
        "online_score",
        "batch_score",
        "decision",
        "groups",
    )
    return {**{k: row.get(k) for k in keep}, **x, "label": label}
