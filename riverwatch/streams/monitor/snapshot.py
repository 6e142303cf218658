"""The monitor's in-memory state in Redis: its windows, reference and concept-drift detectors
outlive the monitor.

:mod:`monitors.core.snapshot` makes the blobs: ``monitor:snapshot:scores`` (the open windows
of scored events, the reference being collected or set, with the runner's champion the
reference follows) and ``monitor:snapshot:labels`` (the concept-drift detectors and the open
window of labeled events, with the champion and the learner's reset count seen last). A part
is written only by a monitor that processed records of its topic since it last wrote it, in
the same MULTI/EXEC as the policy's state (:meth:`streams.monitor.runner.Monitor.publish`),
after a batch, or from the loop when a poll brought nothing or before a commit
(``Monitor.checkpoint``), at most
every ``RIVERWATCH_MONITOR_SNAPSHOT_S`` wall seconds (5), never per record: a batch's cost is
one clock read. A slow snapshot spaces them further (at least 20 times its own duration
apart, so they take at most 5 % of the monitor's thread). A clean stop writes a last one
(the loop's stop hook, before its last commit). The monitor restores both
when it starts; one that cannot be used (damaged, another format, other code or
configuration, larger than :data:`MAX_BYTES`) is logged and that part starts afresh, as
without snapshots (the reference is collected again).

What a crash (kill -9, OOM) loses: the records processed since the last snapshot, at most
about twice ``RIVERWATCH_MONITOR_SNAPSHOT_S`` (10 s) of them (more only while snapshots are
slow), whose offsets the worker committed meanwhile: they are missing from the windows and
the reference (labels among them are not counted again: the monitor marks labels seen in
Redis). Records consumed before the snapshot but after the last offset commit (the loop commits
at most once a second) are consumed again and counted twice: at least once. Decisions the policy
took on them are kept (its state and the outbox are written with each batch). A clean stop
loses nothing.

Keys: one set per deployment, as :mod:`streams.monitor.persist`'s. ``labels`` has one
partition, so one monitor owns the labels part; with several monitors each keeps the score
windows of its ``scores`` partitions and the last to write wins (a restarted one takes the
windows of another's partitions: the reference is still the deployment's distribution).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from riverwatch.core.names import Names
from riverwatch.monitors.core import MonitorCore
from riverwatch.monitors.core.snapshot import PARTS

log = logging.getLogger(__name__)
MAX_BYTES = 256 * 2**20  # per part; Redis takes up to 512 MB a value
# the runner's own attributes kept with each part
RUNNER = {"scores": ("ref_token", "ref_champion"), "labels": ("champion", "online_resets")}


class Snapshots:
    """Restores and writes the snapshots of one monitor (see the module)."""

    def __init__(
        self,
        client: redis.Redis,
        names: Names,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.r = client
        self.keys = {part: names.monitor(f"snapshot:{part}") for part in PARTS}
        self.every_s = every_s
        self.clock = clock
        self.dirty: set[str] = set()  # parts whose records were processed since written
        self.saving: set[str] = set()  # the parts added to the last pipeline
        self.final = False  # stopping: every batch still in flight is snapshotted
        self._next = clock() + every_s

    def restore(self, core: MonitorCore, runner: Any) -> None:
        """Each part's last snapshot into ``core`` and ``runner`` (those unusable: logged)."""
        for part, key in self.keys.items():
            blob = self.r.get(key)
            if blob is None:
                continue
            try:
                extra = core.restore_snapshot(part, blob)  # type: ignore[arg-type]
            except Exception as exc:  # never fatal: that part starts afresh
                log.warning("monitor %s snapshot not used (%s): that state starts afresh",
                            part, exc)  # fmt: skip
                continue
            for name in RUNNER[part]:
                setattr(runner, name, extra.get(name))
            log.info("monitor %s state restored (%d KB snapshot)", part, len(blob) // 1024)  # type: ignore[arg-type]

    def due(self) -> bool:
        """Whether a part changed and its snapshot is due (or the monitor is stopping)."""
        return bool(self.dirty) and (self.final or self.clock() >= self._next)

    def save(self, p: redis.client.Pipeline, core: MonitorCore, runner: Any) -> None:
        """Add to ``p`` the snapshot of each part changed, when one is due (see the module)."""
        self.saving = set()
        if not self.due():
            return
        start = self.clock()
        for part in sorted(self.dirty):
            try:
                blob = core.snapshot(part, {k: getattr(runner, k) for k in RUNNER[part]})
            except Exception:  # the batch's decisions must still be published
                log.exception("monitor %s snapshot failed", part)
                continue
            if len(blob) > MAX_BYTES:  # an older one would lose more than its seconds
                log.warning("monitor %s snapshot of %d MB not kept", part, len(blob) >> 20)
                p.delete(self.keys[part])
            else:
                p.set(self.keys[part], blob)
        self.saving, self.dirty = self.dirty, set()
        self._next = self.clock() + max(self.every_s, 20 * (self.clock() - start))

    def unwritten(self) -> None:
        """The pipeline of :meth:`save` failed (Redis): its parts are due again."""
        self.dirty |= self.saving
        self.saving = set()
        self._next = self.clock()
