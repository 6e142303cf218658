"""Concept drift on error streams: one River detector per model and per protected group.

Feed each labeled prediction's error (0/1 misclassification, or any loss) with
:meth:`ConceptDriftMonitor.update`; it goes to the model's overall detector (group ``"*"``)
and to one detector per protected attribute value (``"age_band=25-34"``). Only *increases* of
the error are reported by default: a learner that gets better is not drift to act on.

The parts: :mod:`monitors.concept.detectors` (detectors by name, ADWIN by default, events,
the per-stream state) and :mod:`monitors.concept.gate` (when a rise is material, significant
and, for a group, its own).

>>> mon = ConceptDriftMonitor()
>>> found = []
>>> for i in range(6000):
...     wrong = i % 20 == 0 if i < 4000 else i % 3 == 0  # 5 % errors, then 33 %
...     found += mon.update("online", float(wrong), groups={"channel": "web"}, time=float(i))
>>> [(e.group, e.direction, 4000 <= e.time < 4200) for e in found]
[('*', 'up', True), ('channel=web', 'up', True)]
>>> found[0].index, round(found[0].before, 3), round(found[0].after, 3)
(4064, 0.054, 0.141)
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from river import drift
from river.base import DriftDetector

from riverwatch.monitors.concept.detectors import (
    ALL,
    Direction,
    DriftEvent,
    Track,
    make_detector,
    rest_before,
    track_rows,
)
from riverwatch.monitors.concept.gate import RiseGate
from riverwatch.monitors.fairness import OTHER

# what a snapshot keeps (:meth:`ConceptDriftMonitor.state`)
_STATE = (
    "dropped", "immaterial", "shared", "events", "_tracks", "_groups_of", "_waiting", "_floor",
    "_credit",
)  # fmt: skip


class ConceptDriftMonitor(RiseGate):
    """Drift detectors on error streams, keyed by (model, group), created on first sight.

    Parameters
    ----------
    detector
        Prototype cloned for every (model, group); default :func:`make_detector` ``()``.
    per_group
        Also keep one detector per ``attribute=value`` of the ``groups`` passed in.
    directions
        Which changes :meth:`update` returns; ``("up", "down")`` reports improvements too.
    max_groups
        Most group detectors per model: the most observed ``attribute=value`` groups.
        Observations of the others go to their attribute's one ``attribute=(other)`` detector
        and are counted in ``dropped`` (a high-cardinality attribute must not exhaust
        memory), and in a bounded tally of waiting groups; a waiting group observed more often
        than the least observed tracked one takes its place (a fresh detector; the evicted
        group waits from then on), so a value that becomes frequent late is tracked too.
    history
        How many past events :attr:`events` keeps.
    min_abs, min_rel, min_count, confirm, alpha
        The gate (:mod:`monitors.concept.gate`): with any of the first three set, a detected
        rise is held for ``confirm`` more observations and reported only if their error rate
        is material (``min_abs`` above the rate before, and ``min_rel`` of it, on a stream of
        ``min_count`` observations), significant at ``alpha`` and, for a group, not shared
        (the rest of the events rose as much). Counted: :attr:`immaterial`, :attr:`shared`. The
        defaults (0) report every detection at once.

    >>> gated = ConceptDriftMonitor(min_abs=0.005, min_rel=0.5, min_count=1000)
    >>> gated.material(before=0.003, after=0.004, n=5000)
    False
    >>> gated.material(before=0.05, after=0.14, n=5000), gated.material(0.05, 0.14, n=500)
    (True, False)
    """

    def __init__(
        self,
        detector: DriftDetector | None = None,
        *,
        per_group: bool = True,
        directions: tuple[Direction, ...] = ("up",),
        max_groups: int = 256,
        history: int = 1000,
        min_abs: float = 0.0,
        min_rel: float = 0.0,
        min_count: int = 0,
        confirm: int = 500,
        alpha: float = 0.0,
    ):
        self.detector = detector if detector is not None else make_detector()
        self.per_group = per_group
        self.directions = directions
        self.max_groups = max_groups
        self.dropped = 0
        self.min_abs, self.min_rel, self.min_count = min_abs, min_rel, min_count
        self.confirm = confirm if (min_abs or min_rel or min_count) else 0
        self.alpha = alpha
        self.immaterial = 0
        self.shared = 0  # group rises the rest of the events shared
        self.events: deque[DriftEvent] = deque(maxlen=history)
        self._tracks: dict[tuple[str, str], Track] = {}
        self._groups_of: dict[str, int] = {}
        # per model: observations of groups pooled into "(other)", and a lower bound of the
        # least observed tracked group's count (refreshed only when a waiting group passes it)
        self._waiting: dict[str, Counter[str]] = {}
        self._floor: dict[str, int] = {}
        self._credit: dict[tuple[str, str], int] = {}  # what a promoted group had waited with

    def update(
        self,
        model: str,
        error: float,
        groups: Mapping[str, str] | None = None,
        time: float | None = None,
    ) -> list[DriftEvent]:
        """Add one error of ``model`` (and of each of its ``groups``); return new events."""
        out = []
        ev = self.observe(model, ALL, error, time)
        if ev is not None:
            out.append(ev)
        if self.per_group and groups:
            for attr, value in groups.items():
                group = f"{attr}={value}"
                if (
                    (model, group) not in self._tracks
                    and (self._groups_of.get(model, 0) >= self.max_groups)
                    and not self._promoted(model, group)
                ):
                    self.dropped += 1
                    group = f"{attr}={OTHER}"
                ev = self.observe(model, group, error, time)
                if ev is not None:
                    out.append(ev)
        return out

    def _promoted(self, model: str, group: str) -> bool:
        """Tally one observation of untracked ``group``; True when it now outnumbers the least
        observed tracked group of ``model``, which is evicted to make room for it."""
        waiting = self._waiting.setdefault(model, Counter())
        waiting[group] += 1
        if len(waiting) > 4 * self.max_groups:  # bounded: keep the most observed half
            self._waiting[model] = waiting = Counter(dict(waiting.most_common(2 * self.max_groups)))
        if waiting[group] <= self._floor.get(model, 0):
            return False
        # a group's rank: its observations, those it waited with included
        tracked = [
            (t.n + self._credit.get((m, g), 0), g)
            for (m, g), t in self._tracks.items()
            if m == model and g != ALL and not g.endswith(f"={OTHER}")
        ]
        least, evicted = min(tracked)
        self._floor[model] = least
        if waiting[group] <= least:
            return False
        del self._tracks[(model, evicted)]
        self._credit.pop((model, evicted), None)
        self._groups_of[model] -= 1
        waiting[evicted] = least  # it waits from here, with what it had
        self._credit[(model, group)] = waiting.pop(group)
        rest = [n for n, g in tracked if g != evicted]
        self._floor[model] = min([*rest, self._credit[(model, group)]])
        return True

    def observe(
        self, model: str, group: str, error: float, time: float | None = None
    ) -> DriftEvent | None:
        """Add one error to the (model, group) detector; the event if it fires now."""
        track = self._tracks.get((model, group))
        if track is None:
            if group != ALL and not group.endswith(f"={OTHER}"):
                if self._groups_of.get(model, 0) >= self.max_groups:
                    self.dropped += 1
                    return None
                self._groups_of[model] = self._groups_of.get(model, 0) + 1
            track = self._tracks[(model, group)] = Track(self.detector.clone())
            track.restart(self._tracks.get((model, ALL)))
        det = track.det
        before = det.estimation if isinstance(det, drift.ADWIN) else track.mean.get()
        det.update(error)
        track.n += 1
        track.errs += error
        track.mean.update(error)
        track.recent.update(error)
        if track.pending is not None:
            return self._confirm(model, group, track, error, time)
        if not det.drift_detected:
            return None
        after = det.estimation if isinstance(det, drift.ADWIN) else track.recent.get()
        direction: Direction = "up" if after > before else "down"
        if isinstance(det, drift.PageHinkley) and det.mode in ("up", "down"):
            direction = "up" if det.mode == "up" else "down"  # one-sided by construction
        if isinstance(det, drift.ADWIN) and direction == "down":
            # River resets ADWIN on the next update after any detection; keeping the window
            # ADWIN has already cut keeps the improved baseline (see the module docstring).
            det._drift_detected = False
        if direction == "up" and self.confirm:
            det._drift_detected = False  # keep the window while the rise is judged
            everyone = self._tracks.get((model, ALL))  # (observed first: see update)
            k_all, n_all = (everyone.errs, everyone.n) if everyone else (0.0, -1)
            rest = rest_before(everyone, track) or (0.0, -1)
            track.pending = [track.mean.get() if track.n > 1 else before, 0.0, 0.0,
                             track.mean.n, k_all, n_all, *rest]  # fmt: skip
            return None
        track.restart(self._tracks.get((model, ALL)))
        if direction not in self.directions:
            return None
        return self._report(model, group, track, time, direction, before, after)

    def _confirm(
        self, model: str, group: str, track: Track, error: float, time: float | None
    ) -> DriftEvent | None:
        """Count one observation into a held rise; report it once its window is full."""
        pend = track.pending
        assert pend is not None
        pend[1] += error
        pend[2] += 1
        if pend[2] < self.confirm:
            return None
        track.pending = None
        everyone = self._tracks.get((model, ALL))
        rest = None  # a group's: the rest of the events over the window, and before it
        if group != ALL and everyone is not None and pend[5] >= 0 and pend[7] > 0:
            now = (everyone.errs - pend[4] - pend[1], everyone.n - pend[5] - pend[2])
            rest = (now, (pend[6], pend[7]))
        verdict = self.verdict(pend, track.n, rest) if "up" in self.directions else "immaterial"
        if verdict == "immaterial":
            self.immaterial += 1
            return None  # ADWIN keeps its window
        track.restart(self._tracks.get((model, ALL)))
        track.det = self.detector.clone()  # as River does after a detection: a new baseline
        if verdict == "shared":
            self.shared += 1  # every event's rise, seen in this group too
            return None
        return self._report(model, group, track, time, "up", pend[0], pend[1] / pend[2])

    def _report(
        self,
        model: str,
        group: str,
        track: Track,
        time: float | None,
        direction: Direction,
        before: float,
        after: float,
    ) -> DriftEvent:
        det = track.det
        track.detections += 1
        event = DriftEvent(
            model, group, track.n, time, direction, before, after, type(det).__name__
        )
        self.events.append(event)
        return event

    def reset(self, model: str) -> None:
        """Forget ``model``'s detectors (after it was retrained, reset or replaced)."""
        for key in [k for k in self._tracks if k[0] == model]:
            del self._tracks[key]
        self._groups_of.pop(model, None)
        self._waiting.pop(model, None)
        self._floor.pop(model, None)
        for key in [k for k in self._credit if k[0] == model]:
            del self._credit[key]

    # -- snapshots (monitors.core.snapshot): the detectors outlive a restarted monitor --------
    def state(self) -> dict[str, Any]:
        """Its detectors, tallies and events (River detectors pickle), for a snapshot."""
        return {k: getattr(self, k) for k in _STATE}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Go on from :meth:`state` (ValueError, changing nothing, when it is not one)."""
        if set(state) != set(_STATE):
            raise ValueError(f"not a concept-drift state: {sorted(state)}")
        for k in _STATE:
            setattr(self, k, state[k])

    def settings_key(self) -> str:
        """What its state depends on (a snapshot taken under other settings is not used)."""
        return repr((self.detector, self.per_group, self.directions, self.max_groups,
                     self.events.maxlen, self.min_abs, self.min_rel, self.min_count,
                     self.confirm, self.alpha))  # fmt: skip

    def report(self) -> list[dict[str, Any]]:
        """One row per (model, group): observations, current error estimate, detections."""
        return track_rows(self._tracks)
