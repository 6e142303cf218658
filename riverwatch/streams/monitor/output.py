"""The write half of the monitor's read-decide-write cycle: what a batch the core took in
leaves behind (its alerts and control requests as records, and one MULTI/EXEC of its stats,
the monitor's status, results, audit, persisted state and a snapshot when due), the batch owed
when Redis fails that write, the snapshots written between batches, and the outbox's control
requests sent again or acknowledged.

Redis is read before the core takes a batch in (streams.monitor.runner) and written after,
never in between, so a batch is written whole or owed, never taken in twice; the methods that
write are here, those that read and feed the core stay with the runner.

:class:`MonitorOutput` is a base class of :class:`streams.monitor.runner.Monitor`, not a part
it holds: a snapshot saves the runner's own attributes by name (the champion the reference
follows, the learner's reset count seen last: :data:`streams.monitor.snapshot.RUNNER`), and
those stay on the one object however its code is split. The attributes below are the
monitor's, set in its ``__init__``, declared here for the type checker only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
import redis

from riverwatch.core.events import dumps
from riverwatch.core.metrics import GROUP_VALUES_POOLED, MONITOR_LATE_EVENTS, drain
from riverwatch.core.names import Names
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.policy import Policy
from riverwatch.monitors.policy.decision import Decision
from riverwatch.streams.batching import TRANSIENT
from riverwatch.streams.monitor.persist import Persisted
from riverwatch.streams.monitor.results import Results
from riverwatch.streams.monitor.snapshot import Snapshots
from riverwatch.streams.monitor.waiting import WaitingLabels
from riverwatch.streams.records import Out

log = logging.getLogger(__name__)


class MonitorOutput:
    """The monitor's writes and outputs (see the module docstring)."""

    r: redis.Redis
    names: Names
    policy: Policy
    core: MonitorCore
    persisted: Persisted
    waiting: WaitingLabels
    results: Results
    snapshots: Snapshots
    owed: Callable[[], list[Out]] | None  # see _emit

    def export_counts(self) -> None:
        """Count the group values the core pooled into "(other)" and the scored events its
        time windows dropped as late since the last call (Prometheus counters)."""
        drain(GROUP_VALUES_POOLED, self.core.pooled)
        drain(MONITOR_LATE_EVENTS, self.core.late)

    def _emit(self, decision: Decision, stats: dict[str, int] | None = None) -> list[Out]:
        """:meth:`publish` a batch the core took in. When Redis fails it, the batch is owed
        (:attr:`owed`: the same write, for the handler to make when the loop consumes the
        batch again, instead of the core taking it in twice) and the error raised."""

        def write() -> list[Out]:
            return self.publish(decision, stats)

        try:
            return write()
        except TRANSIENT:
            self.owed = write
            raise

    def take_owed(self) -> Callable[[], list[Out]] | None:
        """The write of the last batch taken in and not written (once)."""
        owed, self.owed = self.owed, None
        return owed

    def publish(self, decision: Decision, stats: dict[str, int] | None = None) -> list[Out]:
        """The decision's alerts and control requests as records; in one transaction, the
        batch's ``stats`` counts, the monitor's status, the results stored meanwhile, its
        audit and the state a restart must not lose (:mod:`streams.monitor.persist`, what
        changed)."""
        self.export_counts()
        p = self.r.pipeline(transaction=True)  # the state with the requests it decided
        for what, n in (stats or {}).items():
            p.hincrby(self.names.monitor("stats"), what, n)  # tests and ops poll it
        p.set(self.names.monitor("status"), orjson.dumps(self.core.status()))
        self.results.write(p)
        if decision.audit:
            key = self.names.monitor("actions")
            p.lpush(key, *[orjson.dumps(a) for a in decision.audit])
            p.ltrim(key, 0, self.policy.c.audit_max - 1)
        controls = {c.request_id: dumps(c) for c in decision.controls}
        self.persisted.save(p, self.policy, self.core, controls)  # (streams.monitor.persist)
        self.waiting.save(p)
        self.snapshots.save(p, self.core, self)  # when due (streams.monitor.snapshot)
        self._execute(p, persisted=True)
        self.results.written()
        t_alerts, t_control = self.names.topic("alerts"), self.names.topic("control")
        outs = [Out(t_alerts, a.kind.encode(), dumps(a)) for a in decision.alerts]
        return outs + [Out(t_control, rid.encode(), v) for rid, v in controls.items()]

    def checkpoint(self, final: bool = True) -> None:
        """A snapshot when one is due (the loop's idle polls: no batch may come for a while);
        ``final`` (a clean stop): now, and after each batch still in flight."""
        self.snapshots.final = self.snapshots.final or final
        if not self.snapshots.due():
            return
        try:
            p = self.r.pipeline(transaction=True)
            self.snapshots.save(p, self.core, self)
            self._execute(p)
        except Exception:  # (Redis gone first): a restart collects what it lost again
            log.exception("monitor: no snapshot written")

    def _execute(self, p: redis.client.Pipeline, persisted: bool = False) -> None:
        """Run a pipeline of :meth:`checkpoint` or (``persisted``) :meth:`publish`; when Redis
        fails it, what it held is written again with the next one."""
        try:
            p.execute()
        except BaseException:
            self.snapshots.unwritten()
            if persisted:
                self.persisted.written(False, self.core)
            raise
        if persisted:
            self.persisted.written(True, self.core)
            self.waiting.written(True)

    def unsent(self) -> list[Out]:
        """The control requests a monitor before this one decided whose records the broker
        never acknowledged (it stopped in between): to send again."""
        t_control = self.names.topic("control")
        return [Out(t_control, rid.encode(), v) for rid, v in self.persisted.unsent().items()]

    def sent(self, outs: list[Out]) -> None:
        """The broker acknowledged these records: their control requests leave the outbox."""
        t_control = self.names.topic("control")
        self.persisted.sent([o.key.decode() for o in outs if o.topic == t_control and o.key])
