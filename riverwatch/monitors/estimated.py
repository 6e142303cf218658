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
the estimate (``source: "realised"``) in the record the monitor stores.

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
from collections.abc import Sequence
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


class EstimateLedger:
    """The last ``max_windows`` judged windows of each kind, waiting for their labels."""

    def __init__(self, max_windows: int = 512) -> None:
        self.max_windows = max_windows
        self._by_kind: dict[str, list[_Entry]] = {}  # sorted by window start
        self._starts: dict[str, list[float]] = {}  # ... and their starts, for bisect

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
        entries = self._by_kind.setdefault(win.kind, [])
        starts = self._starts.setdefault(win.kind, [])
        i = bisect.bisect_right(starts, win.window_start)
        entries.insert(i, _Entry(record, win.window_start, win.window_end))
        starts.insert(i, win.window_start)
        if len(entries) > self.max_windows:  # the oldest is dropped unrealised (bounded memory)
            del entries[0], starts[0]
        return record

    def label(self, t: float, flagged: bool, label: int) -> None:
        """Count one labeled event in the window of each kind whose range holds ``t``."""
        for kind, entries in self._by_kind.items():
            i = bisect.bisect_right(self._starts[kind], t) - 1
            if i >= 0 and t <= entries[i].end:
                entries[i].counts[2 * int(bool(label)) + int(flagged)] += 1

    def matured(self, as_of: float, delay_s: float) -> list[dict[str, Any]]:
        """Records of the windows whose labels have matured, realised figures in place of the
        estimates (windows without any label are dropped as they were)."""
        out = []
        for kind, entries in self._by_kind.items():
            while entries and entries[0].end + delay_s <= as_of:
                e = entries.pop(0)
                self._starts[kind].pop(0)
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


def _none(v: float) -> float | None:
    return None if math.isnan(v) else v
