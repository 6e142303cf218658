"""The monitor's processing: score and label micro-batches -> :class:`monitors.core.MonitorCore`.

Everything here is synchronous and runs in the monitor's single thread (streams.monitor.agents), so
its state (windows, detectors, reference, policy) needs no lock. This layer joins records to
their stored feature rows (Redis), keeps the reference with the registry (a promoted
champion's training rows from the offline store), takes explicit reference requests
(``POST /v1/monitor/reference``), follows the learner's resets, and stores results (latest and
a bounded history under ``Names.monitor``) and Prometheus gauges; the pure core decides, and
its alerts and control requests come back as :class:`Out` records for the caller to produce.

One class owns the read-decide-write cycle of each batch (rows, reference, resets, waiting
labels read before the core takes the batch in, one MULTI after): the reads are here, the
writes and outputs are its base class (output.py), and its parts live beside it (persist,
results, snapshot, waiting, data).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import redis

from riverwatch.context import Context
from riverwatch.core.metrics import EVENTS
from riverwatch.core.outputs import Score
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.policy import Policy
from riverwatch.streams.monitor.champion import champion_reference
from riverwatch.streams.monitor.data import feature_frame
from riverwatch.streams.monitor.output import MonitorOutput
from riverwatch.streams.monitor.persist import Persisted
from riverwatch.streams.monitor.results import Results
from riverwatch.streams.monitor.snapshot import Snapshots
from riverwatch.streams.monitor.waiting import WaitingLabels
from riverwatch.streams.records import Out, Record, dead_letters, parse_batch, parse_labels
from riverwatch.streams.rows import monitorable

log = logging.getLogger(__name__)


class Monitor(MonitorOutput):
    """The core over scored and labeled events, fed from Kafka records and Redis rows."""

    def __init__(self, ctx: Context, client: redis.Redis, worker: str):
        self.r = client
        self.worker = worker
        self.names = ctx.names
        self.registry = ctx.registry(client)
        self.fs = ctx.features
        self.offline = ctx.offline(f"monitor-{worker}")
        self.t_dead = self.names.topic("deadletter")
        self.concept = ctx.concept_monitor()
        self.limits = ctx.limits
        self.label_horizon_s = ctx.worker_config.label_horizon_s
        self.policy = Policy(ctx.policy)
        self.persisted = Persisted(client, self.names)  # what a restart must not lose
        cfg = ctx.worker_config
        self.waiting = WaitingLabels(client, self.names, cfg.early_label_grace_s,
                                     cfg.early_labels_max)  # fmt: skip
        self.persisted.restore_policy(self.policy)
        self.results = Results(self.names, ctx.monitor_history)  # written with their batch
        self.rejected: dict[str, int] = {}  # the rejects' counters, read before each batch
        self.owed: Callable[[], list[Out]] | None = None  # see _emit
        self.core = MonitorCore(
            ctx.monitor_core(),
            self.concept,
            self.policy,
            store=self.results.store,
            frame=feature_frame,
            rejected=lambda: self.rejected,  # as read before the batch (core.rejects)
        )
        self.persisted.restore_core(self.core)
        self.ref_token: str | None = None
        self.ref_champion: str | None = None  # the champion the reference follows
        self.champion: str | None = None
        self.online_resets: int | None = None  # the learner's reset count seen last
        # windows, reference, detectors (and the four above) as last snapshotted
        self.snapshots = Snapshots(client, self.names, ctx.worker_config.monitor_snapshot_s)
        self.snapshots.restore(self.core, self)

    @property
    def as_of(self) -> float:
        """The latest event (or label) time seen: label maturity is judged at it."""
        return self.core.as_of

    # -- scores ----------------------------------------------------------------------------
    def process_scores(self, records: list[Record]) -> list[Out]:
        """Window a batch of ``scores`` records (joined to their feature rows)."""
        parsed, bad = parse_batch(Score, records, self.limits, topic="scores")
        outs = dead_letters(self.t_dead, bad, self.worker)
        eids = [score.event_id for _, score in parsed]
        rows = self._rows(eids)
        self._follow_reference()
        if rows and self.core.first is None:
            self._begin(min(float(r["epoch"]) for r in rows.values()))
        self.rejected = self._read_rejects()  # what the windows closing in this batch read
        # Redis is read above and written below, never in between: a batch the core took in
        # is written whole or owed (:meth:`_emit`), never taken in twice.
        decision = self.core.scores(list(rows.values()))
        EVENTS.labels(topic="scores", outcome="monitored").inc(len(rows))
        self.snapshots.dirty.add("scores")
        late = self.waiting.take(rows)  # labels that came before these scores (.waiting)
        if late:
            pairs = [(rows[e], label, at) for e, (label, at) in late.items()]
            decision.extend(self.core.labels(pairs, self.champion))
            self.snapshots.dirty.add("labels")
        stats = {"scores": len(records), "labels_late": len(late)}
        return outs + self._emit(decision, {k: n for k, n in stats.items() if n})

    def _rows(self, eids: list[str], features: bool = True) -> dict[str, dict[str, Any]]:
        """The stored feature rows of ``eids`` (one MGET); missing or expired ones skipped.
        Raises for one the windows cannot take, before anything of the batch is monitored
        (streams.rows: the batch is split to dead-letter its record, streams.guard)."""
        if not eids:
            return {}
        raw = self.r.mget([self.names.feature_row(e) for e in eids])
        return {
            e: monitorable(e, v, features) for e, v in zip(eids, raw, strict=True) if v is not None
        }

    def _read_rejects(self) -> dict[str, int]:
        """The rejected transactions' counters (one HGETALL per batch of scores)."""
        raw = self.r.hgetall(self.names.monitor("rejects"))
        return {
            k.decode("utf-8", "replace") if isinstance(k, bytes) else k: int(v)
            for k, v in raw.items()
        }

    def _begin(self, t: float) -> None:
        """The first event time the deployment's monitor saw (kept in Redis, so a restarted
        monitor does not warm up again)."""
        key = self.names.monitor("first_event")
        self.r.set(key, repr(t), nx=True)
        self.core.begin(float(self.r.get(key) or t))

    def _follow_reference(self) -> None:
        """An explicit request (``POST /v1/monitor/reference``) restarts the reference now;
        a newly promoted champion brings its training window's rows as the reference."""
        req = self.r.getdel(self.names.monitor("reference_request"))
        if req is not None and math.isfinite(self.as_of):
            self.core.restart(self.as_of)
            log.info("monitor reference restarted on request: %s", req[:200])
        token = self.registry.stage_token()
        if token == self.ref_token:
            return
        first = self.ref_token is None
        self.ref_token = token
        champ = self.registry.champion()
        if champ is None or champ.name == self.ref_champion:
            return  # e.g. a challenger registered: the champion, so the reference, stays
        self.ref_champion = champ.name
        rows, weights = champion_reference(self.registry, self.offline, champ, self.fs.names)
        if self.core.set_reference(rows, f"champion {champ.name}", weights=weights):
            log.info("monitor reference: champion %s (%d rows)", champ.name, len(rows))
            if math.isfinite(self.as_of):
                # Its training rows were scored by the models serving then, not by this
                # champion: the score reference is collected afresh from its own scores (as
                # after an online reset), else a promotion alone reads as prediction drift.
                self.core.restart_scores(self.as_of)
        elif not first and math.isfinite(self.as_of):
            self.core.restart(self.as_of)  # a new champion, too few rows: collect afresh

    # -- labels ----------------------------------------------------------------------------
    def process_labels(self, records: list[Record]) -> list[Out]:
        """Join labels to their rows: concept drift per label, fairness/performance per window."""
        # the learner dead-letters the bad ones
        labels, bad = parse_labels(records, self.limits)
        EVENTS.labels(topic="labels", outcome="monitor_skipped").inc(len(bad))
        self._follow_resets()
        champ = self.registry.champion()
        name = champ.name if champ else None
        if name != self.champion:  # a new batch model: its error stream starts afresh
            self.concept.reset("batch")
            self.concept.reset("combined")
            self.champion = name
        rows = self._rows(list(labels), features=False)  # (raising) before any is marked seen
        late, drop = self.waiting.due()  # labels that waited for their rows (.waiting)
        self.snapshots.dirty.add("labels")
        fresh = self._first_seen(list(labels))  # redelivered labels are not counted twice
        self.waiting.take([*late, *drop])
        pairs = [*late.values()]
        pairs += [(rows[e], labels[e].label, labels[e].epoch) for e in fresh if e in rows]
        unjoined = len(drop) + self.waiting.add(
            {e: (labels[e].label, labels[e].epoch) for e in fresh if e not in rows}
        )
        stats = {"labels_late": len(late), "labels_unjoined": unjoined}
        return self._emit(self.core.labels(pairs, name), {k: n for k, n in stats.items() if n})

    def _follow_resets(self) -> None:
        """A reset online model starts a new error stream: its old detectors would keep
        reporting the drift that caused the reset (one HGET per batch)."""
        resets = int(self.r.hget(self.names.learner_stats(), "resets") or 0)
        if self.online_resets is not None and resets != self.online_resets:
            self.concept.reset("online")
            if math.isfinite(self.as_of) and self.core.ready:
                self.core.restart_scores(self.as_of)  # its scores change, the inputs do not
                self.snapshots.dirty.add("scores")
            log.info("online model reset: its detectors and the score reference start afresh")
        self.online_resets = resets

    def _first_seen(self, eids: list[str]) -> list[str]:
        if not eids:
            return []
        # MULTI/EXEC: Redis lost part-way marks none seen (none skipped as redelivered)
        p = self.r.pipeline(transaction=True)
        for e in eids:
            p.set(self.names.monitor(f"seen:{e}"), b"1", nx=True, ex=self.label_horizon_s)
        p.hincrby(self.names.monitor("stats"), "labels", len(eids))  # tests and ops poll it
        return [e for e, new in zip(eids, p.execute()[:-1], strict=True) if new]
