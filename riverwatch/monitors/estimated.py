"""Performance before labels: each scored window's CBPE estimate against the reference's, and
the realised figure in its place once the window's labels have matured.

:func:`drops` compares a window's :class:`monitors.cbpe.Estimate` (precision and recall at the
decision threshold, with intervals) with the reference's estimate (the same estimator on the
reference's scores: a calibration error common to both cancels). A metric has *dropped* when
the window's whole interval lies below the reference by a material amount,
``max(min_abs, min_rel * reference)``, and at least ``min_count`` events stand behind it
(flagged events for precision, expected frauds for recall) in the window and the reference.
The estimate is blind to a change of the concept (a new fraud pattern the scores miss): that
is what the labels' concept drift is for.

:class:`EstimateLedger` keeps the estimates of the last judged windows; a labeled event counts
in the window (of each kind) whose event-time range holds it, and once the window's label
delay has passed (``as_of >= window_end + delay``) its realised precision and recall replace
the estimate (``source: "realised"``) in the record the monitor stores. The windows waiting
outlive the monitor: :meth:`EstimateLedger.changes` gives the entries changed since the last
call (the runner writes them to a Redis hash, one field per window) and ``load`` takes them
back, so a restarted monitor still realises the windows it estimated before.

>>> import numpy as np
>>> from riverwatch.monitors.cbpe import estimate
>>> ref = estimate(np.r_[np.full(200, 0.9), np.full(9800, 0.01)], 0.5)
>>> now = estimate(np.r_[np.full(200, 0.55), np.full(9800, 0.01)], 0.5)
>>> [(d.metric, round(d.estimate, 2), round(d.reference, 2)) for d in drops(now, ref)]
[('precision', 0.55, 0.9)]
>>> drops(ref, ref)
[]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from riverwatch.monitors.cbpe import Estimate
from riverwatch.monitors.windows import Window

METRICS = ("precision", "recall")


@dataclass(frozen=True)
class EstimateDrop:
    """One metric whose estimate fell materially below the reference's."""

    metric: str
    estimate: float
    low: float
    high: float
    reference: float
    limit: float  # the interval's upper end had to be below this
    count: float  # events behind the metric in the window (flagged / expected frauds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _count(est: Estimate, metric: str) -> float:
    return float(est.flagged) if metric == "precision" else est.expected_frauds


def drops(
    est: Estimate,
    ref: Estimate,
    *,
    min_abs: float = 0.1,
    min_rel: float = 0.2,
    min_count: float = 30,
) -> list[EstimateDrop]:
    """The metrics of ``est`` whose interval lies below ``ref``'s estimate materially."""
    out = []
    for m in METRICS:
        value, lo, hi = getattr(est, m), getattr(est, f"{m}_low"), getattr(est, f"{m}_high")
        base = getattr(ref, m)
        if not all(math.isfinite(v) for v in (value, lo, hi, base)):
            continue
        if min(_count(est, m), _count(ref, m)) < min_count:
            continue
        limit = base - max(min_abs, min_rel * base)
        if hi < limit:
            out.append(EstimateDrop(m, value, lo, hi, base, limit, _count(est, m)))
    return out


def message(found: Sequence[EstimateDrop]) -> str:
    """``estimated precision 0.55 (interval 0.48..0.62) below the reference's 0.90 ...``."""
    return "; ".join(
        f"estimated {d.metric} {d.estimate:.3f} (interval {d.low:.3f}..{d.high:.3f}) below "
        f"the reference's {d.reference:.3f} (before labels, from {d.count:.0f} events)"
        for d in found
    )


@dataclass
class _Entry:
    record: dict[str, Any]
    start: float
    end: float
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # tn, fp, fn, tp


def _field(kind: str, e: _Entry) -> str:
    return f"{kind}|{e.start!r}|{e.end!r}"


class EstimateLedger:
    """The last ``max_windows`` judged windows of each kind, waiting for their labels."""

    STATE_FORMAT = 1

    def __init__(self, max_windows: int = 512) -> None:
        self.max_windows = max_windows
        self._by_kind: dict[str, list[_Entry]] = {}  # sorted by window start
        self._starts: dict[str, list[float]] = {}  # ... and their starts, for bisect
        # since the last changes(): entries added or counted (by field), and those gone
        self._dirty: dict[str, tuple[str, _Entry]] = {}
        self._gone: set[str] = set()

    def add(self, win: Window[Any], est: Estimate, ref: Estimate | None) -> dict[str, Any]:
        """Track a judged window; returns its record (served until the labels mature)."""
        record = {
            **win.meta(),
            "source": "estimate",
            "precision": _none(est.precision),
            "recall": _none(est.recall),
            "estimated": est.to_dict(),
            "reference": ref.to_dict() if ref is not None else None,
            "realised": None,
        }
        self._insert(win.kind, _Entry(record, win.window_start, win.window_end))
        return record

    def _insert(self, kind: str, e: _Entry) -> None:
        entries = self._by_kind.setdefault(kind, [])
        starts = self._starts.setdefault(kind, [])
        i = bisect.bisect_right(starts, e.start)
        entries.insert(i, e)
        starts.insert(i, e.start)
        self._touch(kind, e)
        if len(entries) > self.max_windows:  # the oldest is dropped unrealised (bounded memory)
            self._drop(kind, entries[0])
            del entries[0], starts[0]

    def _touch(self, kind: str, e: _Entry) -> None:
        f = _field(kind, e)
        self._dirty[f] = (kind, e)
        self._gone.discard(f)

    def _drop(self, kind: str, e: _Entry) -> None:
        f = _field(kind, e)
        self._dirty.pop(f, None)
        self._gone.add(f)

    def label(self, t: float, flagged: bool, label: int) -> None:
        """Count one labeled event in the window of each kind whose range holds ``t``."""
        for kind, entries in self._by_kind.items():
            i = bisect.bisect_right(self._starts[kind], t) - 1
            if i >= 0 and t <= entries[i].end:
                entries[i].counts[2 * int(bool(label)) + int(flagged)] += 1
                self._touch(kind, entries[i])

    def matured(self, as_of: float, delay_s: float) -> list[dict[str, Any]]:
        """Records of the windows whose labels have matured, realised figures in place of the
        estimates (windows without any label are dropped as they were)."""
        out = []
        for kind, entries in self._by_kind.items():
            while entries and entries[0].end + delay_s <= as_of:
                e = entries.pop(0)
                self._starts[kind].pop(0)
                self._drop(kind, e)
                tn, fp, fn, tp = e.counts
                if tn + fp + fn + tp == 0:
                    continue
                realised = {
                    "labeled": tn + fp + fn + tp,
                    "frauds": fn + tp,
                    "flagged": fp + tp,
                    "precision": tp / (tp + fp) if tp + fp else None,
                    "recall": tp / (tp + fn) if tp + fn else None,
                }
                out.append(
                    {
                        **e.record,
                        "source": "realised",
                        "precision": realised["precision"],
                        "recall": realised["recall"],
                        "realised": realised,
                    }
                )
        return out

    # -- persistence: the windows waiting for their labels outlive the monitor ---------------
    def changes(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The entries added or counted since the last call (field -> JSON-ready entry) and
        the fields of those gone (realised or dropped); the runner mirrors them in a Redis
        hash, so a write is a few fields per batch however many windows wait (at most
        ``max_windows`` per kind).

        >>> from riverwatch.monitors.cbpe import estimate
        >>> import numpy as np
        >>> led = EstimateLedger()
        >>> est = estimate(np.r_[np.full(50, 0.9), np.full(950, 0.01)], 0.5)
        >>> _ = led.add(Window("time", 0, 0.0, 100.0, [], []), est, None)
        >>> led.label(50.0, True, 1)
        >>> saved, gone = led.changes()
        >>> again = EstimateLedger()
        >>> again.load(saved.values())
        >>> [r["realised"]["precision"] for r in again.matured(200.0, 100.0)]
        [1.0]
        >>> again.changes()[1], led.changes()
        (['time|0.0|100.0'], ({}, []))
        """
        out = {
            f: {"v": self.STATE_FORMAT, "kind": kind, "record": e.record, "start": e.start,
                "end": e.end, "counts": list(e.counts)}
            for f, (kind, e) in self._dirty.items()
        }  # fmt: skip
        gone = sorted(self._gone)
        self._dirty, self._gone = {}, set()
        return out, gone

    def load(self, saved: Iterable[Mapping[str, Any]]) -> None:
        """Take back the entries :meth:`changes` gave (those of another format are skipped;
        raises KeyError, TypeError or ValueError on an entry that is not one)."""
        for d in saved:
            if d.get("v") != self.STATE_FORMAT:
                continue
            counts = [int(c) for c in d["counts"]]
            if len(counts) != 4:
                raise ValueError(f"an estimate ledger entry with counts {counts!r}")
            e = _Entry(dict(d["record"]), float(d["start"]), float(d["end"]), counts)
            self._insert(str(d["kind"]), e)
        self._dirty = {}  # stored already (a dropped one is deleted on the next changes())


def _none(v: float) -> float | None:
    return None if math.isnan(v) else v
