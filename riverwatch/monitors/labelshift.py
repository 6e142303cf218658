"""Label shift (a prior shift: more fraud): the fraud rate among matured labels per window of
event time, against the reference's.

The monitor core counts each label of a judged event (from the reference's start on) by the
*event* time of the labelled event, not by when the label came: into the reference's tally
when the event lies in the reference period ``[start, until)``, else into its window's (event
time cut in windows of ``width``, aligned on multiples of it; the first may be partial). A
window is *matured* once the monitor's clock is ``delay`` (the label delay) past its end:
every label of its events is due; the reference likewise. Matured windows are handed out once,
in order, and only once the reference has matured (:meth:`LabelRates.matured`); the policy
judges them (:meth:`monitors.policy.alert_rules.AlertRules.label_shift`). A label of a window
already handed out (later than the delay) is counted in :attr:`LabelRates.late` only; a
window without any label is not handed out.

The tallies belong to one reference period: a label or a maturity check under another
(a restarted reference, a new one collected after too few rows) starts them afresh. A
reference set at once from rows with labels (a champion's training rows) takes their counts
and counts windows only from the next window boundary after the clock (the labels of earlier
events may have come before and are not counted).

>>> r = LabelRates(width=10.0, delay=5.0)
>>> for t in range(0, 30):  # reference [0, 10): 1 fraud in 10; then 3 in 10 per window
...     r.add(float(t), int(t % 10 == 0 if t < 10 else t % 10 < 3), period=(0.0, 10.0))
>>> r.matured(24.0, period=(0.0, 10.0))  # the window [10, 20) is due at 25
[]
>>> r.ref, r.matured(25.0, period=(0.0, 10.0))
((1, 10), [(1, 3, 10)])
"""

from __future__ import annotations

import math


class LabelRates:
    """Fraud and label counts of the reference and of each window of event time (see the
    module docstring)."""

    def __init__(self, width: float, delay: float) -> None:
        self.width, self.delay = width, delay
        self.late = 0  # labels of windows already handed out
        self.reset(None)

    def reset(self, period: tuple[float, float] | None) -> None:
        """Start afresh for the reference period ``period`` (``(start, until)``)."""
        self.period = period
        self.ref = (0, 0)  # frauds, labels of the reference period's events
        self.ref_done = False  # every label of the reference period is due (or was given)
        self.open: dict[int, tuple[int, int]] = {}  # window index -> frauds, labels
        # the first window not yet handed out (the one the reference period ends in)
        self.next: float = -math.inf if period is None else math.floor(period[1] / self.width)

    def set_reference(
        self, period: tuple[float, float], frauds: int, labels: int, clock: float
    ) -> None:
        """A reference given at once (rows with their labels), windows from after ``clock``."""
        self.reset(period)
        self.ref, self.ref_done = (frauds, labels), True
        if math.isfinite(clock):
            self.next = max(self.next, math.floor(clock / self.width) + 1)

    def add(self, t: float, label: int, period: tuple[float, float]) -> None:
        """A label ``label`` (1: fraud) of an event at ``t``, under reference ``period``."""
        if period != self.period:
            self.reset(period)
        start, until = period
        if t < start:
            return
        if t < until:
            if not self.ref_done:
                self.ref = (self.ref[0] + int(label), self.ref[1] + 1)
            return
        i = math.floor(t / self.width)
        if i < self.next:
            self.late += 1
            return
        k, n = self.open.get(i, (0, 0))
        self.open[i] = (k + int(label), n + 1)

    def matured(self, clock: float, period: tuple[float, float]) -> list[tuple[int, int, int]]:
        """``(index, frauds, labels)`` of each window matured by ``clock`` not handed out yet,
        in order (none before the reference has matured)."""
        if period != self.period:
            self.reset(period)
        if not math.isfinite(clock):  # no event seen yet (a reference set before any)
            return []
        if not self.ref_done and clock >= period[1] + self.delay:
            self.ref_done = True
        if not self.ref_done:
            return []
        last = math.floor((clock - self.delay) / self.width) - 1  # the last matured window
        due = sorted(i for i in self.open if i <= last)
        if last >= self.next:
            self.next = last + 1
        return [(i, *self.open.pop(i)) for i in due]

    def window(self, index: int) -> tuple[float, float]:
        """The event-time bounds of window ``index``."""
        return index * self.width, (index + 1) * self.width
