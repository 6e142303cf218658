"""What the monitor keeps in Redis so that a restarted helper goes on where it stopped.

Four parts, each written only when it changed (:meth:`Persisted.save`, in the pipeline of
:meth:`streams.monitor.runner.Monitor.publish`) and read back when the monitor starts:

* the policy's state (``monitor:policy``: cooldowns, baselines, drift streaks, a pending
  rollback check, a follow-up retrain due at an event time), one JSON document;
* data quality's state (``monitor:quality_state``: its reference per window kind and the
  rejected records' counters read last), one JSON document;
* the judged windows whose estimated performance waits for its labels
  (``monitor:estimates:waiting``, :class:`monitors.estimated.EstimateLedger`): one hash field
  per window (its record and its labels counted so far), written as labels are counted and
  deleted once realised or dropped, so a batch writes a few fields however many windows wait
  (at most ``max_windows`` per kind, 512). Without it a restarted monitor never replaced the
  estimates of the windows before the restart with their realised figures.

* the control requests decided but not yet acknowledged by the broker (``monitor:outbox``,
  request id -> the record): written with the policy's state that decided them (one
  MULTI/EXEC), deleted once the broker has the record (:meth:`Persisted.sent`); a monitor that
  starts sends those left again (:meth:`Persisted.unsent`). The state says the request was
  made (its cooldown runs, a follow-up is no longer due), so without it a helper stopped
  between the two lost the request for good. At least once: a helper stopped after the
  broker took the record but before the delete sends it twice (same ``request_id``). Bounded
  by the policy's cooldowns (one request per action and target per cooldown of event time).

What the core holds in memory only (its windows, the reference, the concept-drift detectors)
is snapshotted every few seconds into the same pipeline by :mod:`streams.monitor.snapshot`.

Each is versioned (a format number): one of another format, or unreadable, is ignored and that
part starts afresh. One set of keys per deployment: the monitor runs in one helper process
(see README); with several, the last to decide wins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis

from riverwatch.core.names import Names
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.policy import Policy

log = logging.getLogger(__name__)
_BAD = (ValueError, KeyError, TypeError, IndexError)


class Persisted:
    """Restores and saves the monitor's state in Redis (see the module)."""

    def __init__(self, client: redis.Redis, names: Names):
        self.r = client
        self.k_policy = names.monitor("policy")
        self.k_quality = names.monitor("quality_state")
        self.k_estimates = names.monitor("estimates:waiting")
        self.k_outbox = names.monitor("outbox")
        self._policy: bytes | None = None  # as last saved or restored
        self._quality: bytes | None = None
        # the estimate ledger's changes a failed pipeline did not write, written with the next
        self._waiting: dict[Any, bytes] = {}  # field (str) -> entry
        self._gone: set[str] = set()

    def restore_policy(self, policy: Policy) -> None:
        """Cooldowns, baselines, drift streaks and a due follow-up of the monitor before."""
        raw = self.r.get(self.k_policy)
        if raw is None:
            return
        try:
            policy.restore(orjson.loads(raw))
        except _BAD:
            log.exception("monitor policy state unreadable: starting afresh")
            return
        self._policy = orjson.dumps(policy.state())
        log.info("monitor policy state restored (cooldowns, baselines, drift streaks)")

    def restore_core(self, core: MonitorCore) -> None:
        """Data quality's reference (not collected again: the feature reference is, from the
        registry's champion or a new period) and the estimates waiting for their labels."""
        raw = self.r.get(self.k_quality)
        if raw is not None:
            try:
                core.restore_quality(orjson.loads(raw))
            except _BAD:
                log.exception("monitor data-quality state unreadable: collecting afresh")
            else:
                core.quality_changed = False
                self._quality = orjson.dumps(core.quality_state())
                kinds = [k for k, q in core.quality.items() if q.ready]
                log.info("monitor data-quality state restored (references of %s windows)",
                         kinds or "no")  # fmt: skip
        saved = self.r.hgetall(self.k_estimates)
        try:
            core.ledger.load(orjson.loads(v) for v in saved.values())
        except _BAD:
            log.exception("monitor estimates waiting for labels unreadable: dropped")
            core.ledger = type(core.ledger)(core.ledger.max_windows)
            self.r.delete(self.k_estimates)
        else:
            if saved:
                log.info("monitor: %d estimated windows wait for their labels", len(saved))

    def save(
        self,
        p: redis.client.Pipeline,
        policy: Policy,
        core: MonitorCore,
        controls: Mapping[str, bytes] | None = None,
    ) -> None:
        """Add to ``p`` the writes of what changed since the last save, and the ``controls``
        decided (request id -> record) to the outbox."""
        if controls:
            p.hset(self.k_outbox, mapping={k: v for k, v in controls.items()})
        state = orjson.dumps(policy.state())
        if state != self._policy:  # most windows change nothing the policy remembers
            p.set(self.k_policy, state)
            self._policy = state
        if core.quality_changed:  # a window closed, or the reference moved
            quality = orjson.dumps(core.quality_state())
            if quality != self._quality:  # (a judged window without rejects: the same)
                p.set(self.k_quality, quality)
                self._quality = quality
            core.quality_changed = False
        waiting, gone = core.ledger.changes()
        opt = orjson.OPT_SERIALIZE_NUMPY  # NaN -> null, as the stored records
        self._waiting = {f: e for f, e in self._waiting.items() if f not in gone}
        self._waiting |= {f: orjson.dumps(e, option=opt) for f, e in waiting.items()}
        self._gone = (self._gone - waiting.keys()) | set(gone)
        if self._waiting:
            p.hset(self.k_estimates, mapping=self._waiting)
        if self._gone:
            p.hdel(self.k_estimates, *sorted(self._gone))

    def written(self, ok: bool, core: MonitorCore) -> None:
        """The pipeline of :meth:`save` ran (``ok``), or Redis failed it: then the next save
        writes all again (the policy's and quality's state, the ledger's changes)."""
        if ok:
            self._waiting, self._gone = {}, set()
            return
        self._policy = self._quality = None
        core.quality_changed = True

    def unsent(self) -> dict[str, bytes]:
        """The outbox: control requests decided whose records the broker never acknowledged."""
        raw: dict[bytes, bytes] = self.r.hgetall(self.k_outbox)  # type: ignore[assignment]
        return {k.decode("utf-8", "replace"): v for k, v in raw.items()}

    def sent(self, request_ids: Sequence[str]) -> None:
        """The broker has these requests' records: out of the outbox."""
        if request_ids:
            self.r.hdel(self.k_outbox, *request_ids)
