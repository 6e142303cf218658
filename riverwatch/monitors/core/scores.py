"""Windows of scored events: drift, prediction drift, volume, selection-rate parity, data
quality and estimated performance of each closed window (see :mod:`monitors.core`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.monitors.cbpe import Estimate
from riverwatch.monitors.columns import FeatureDrift
from riverwatch.monitors.core.config import Row
from riverwatch.monitors.core.reference import ReferenceTracking
from riverwatch.monitors.dataquality import DataQuality
from riverwatch.monitors.dataquality.tally import QualityCheck
from riverwatch.monitors.fairness.report import AttributeFairness
from riverwatch.monitors.policy.decision import Decision
from riverwatch.monitors.prediction import ScoreDrift
from riverwatch.monitors.quality import VolumeCheck
from riverwatch.monitors.windows import TimeWindows, Window


class ScoreWindows(ReferenceTracking):
    """Windows scored rows and judges each closed window."""

    def scores(self, rows: Sequence[Row]) -> Decision:
        """Window scored rows (each with ``x``, ``score``, ``decision``, ``groups``, ``epoch``)."""
        out = Decision()
        late = self._dropped()
        for row in rows:
            t = float(row["epoch"])
            self.as_of = max(self.as_of, t)
            self._collect(row, t)
            self._collect_score(row, t)
            for w in self.windows:
                for win in w.add(row, t):
                    out.extend(self.window(win))
        self.late["time"] += self._dropped() - late
        return out

    def _dropped(self) -> int:
        """The events the time windows dropped as late so far (:attr:`TimeWindows.late`)."""
        return sum(w.late for w in self.windows if isinstance(w, TimeWindows))

    def window(self, win: Window[Row]) -> Decision:
        """Judge one closed window of scored rows (nothing while warming up)."""
        self._close_references(win)
        rows = win.events
        frame = functools.cache(lambda: self.frame(rows, self.c.features))
        quality = self._quality(win, frame)
        if not self.ready or self.ref_until is None or win.window_start < self.ref_until:
            # data quality judges against its own reference, which a restarted monitor keeps
            # (restore_quality) while the others are collected again
            self.store("drift", {**win.meta(), "status": self.status(), "quality": quality.report})
            return self._judge_quality(win, quality)
        assert self.features is not None and self.volume is not None
        ref = self.scores_ref
        groups, scores, refs, flagged, cards = _read(rows, ref.key if ref else None)
        data = self.features.compare(frame(), groups)
        pred = ref.compare(refs, scores) if ref else None
        vol = self.volume.compare(groups, win.window_end - win.window_start, _volume(win))
        fair = self._fairness(
            groups, (0 for _ in groups), flagged, cards, rates=("selection_rate",)
        )
        est = self._estimate(scores)
        self.store("estimate", self.ledger.add(win, est, self.ref_estimate))
        self.store(
            "drift",
            {
                **win.meta(),
                "status": self.status(),
                "reference": self.ref_info,
                "data": data.to_dict(),
                "prediction": pred.to_dict() if pred else None,
                "volume": vol.to_dict(),
                # before the labels: performance as the scores expect it (CBPE)
                "estimated": est.to_dict(),
                "selection": {a: f.to_dict() for a, f in fair.items()},
                "quality": quality.report,
            },
        )
        return self._judge(win, data, pred, vol, quality, fair, est)

    def _judge(
        self,
        win: Window[Row],
        data: FeatureDrift,
        pred: ScoreDrift | None,
        vol: VolumeCheck,
        quality: QualityCheck,
        fair: dict[str, AttributeFairness],
        est: Estimate,
    ) -> Decision:
        """The policy's decisions on one judged window's findings."""
        out = self.policy.features(win, data)
        if pred is not None:
            out.extend(self.policy.prediction(win, pred))
        if win.kind == "time":  # a count window of a backlog consumed partition by partition
            out.extend(self.policy.quality(win, vol))  # spans more time than its events
        out.extend(self._judge_quality(win, quality))
        out.extend(self.policy.fairness(win, fair))
        out.extend(self.policy.estimated(win, est, self.ref_estimate))
        return out

    def _judge_quality(self, win: Window[Row], quality: QualityCheck) -> Decision:
        """The policy's decisions on a window's data quality (nothing when not judged)."""
        out = Decision()
        if quality.volume is not None:  # a partition of transactions gone silent
            out.extend(self.policy.quality(win, quality.volume))
        out.extend(self.policy.data_quality(win, quality.findings))
        return out

    def _quality(self, win: Window[Row], frame: Callable[[], pd.DataFrame]) -> QualityCheck:
        q = self.quality.get(win.kind)
        if q is None:
            q = self.quality[win.kind] = self._new_quality(win.kind)
            q.collect(*self._quality_period)
        self.quality_changed = True
        return q.window(
            win.window_start, win.window_end, win.events, frame, self.rejected(),
            counts=win.counts, total=win.n,
        )  # fmt: skip

    def _new_quality(self, kind: str) -> DataQuality:
        numeric = [c for c in self.c.features if c == "amount" or c.startswith("attr_")]
        return DataQuality(self.c.quality, numeric, partitions=kind == "time")

    # -- persistence: data quality's reference outlives the monitor ------------------------
    def quality_state(self) -> dict[str, Any]:
        """Data quality's state per window kind and its reference period (JSON-ready; the
        runner stores it when :attr:`quality_changed`)."""
        start, until = self._quality_period
        return {
            "period": [start if math.isfinite(start) else None,
                       until if math.isfinite(until) else None],
            "kinds": {kind: q.state() for kind, q in self.quality.items()},
        }  # fmt: skip

    def restore_quality(self, state: Mapping[str, Any]) -> None:
        """Go on from :meth:`quality_state` (a restarted monitor keeps data quality's
        reference; raises KeyError, TypeError or ValueError, changing nothing, when ``state``
        is not one)."""
        restored = {}
        for kind, st in state["kinds"].items():
            if kind in ("count", "time"):
                restored[kind] = q = self._new_quality(kind)
                q.restore(st)
        start, until = (math.inf if t is None else float(t) for t in state["period"])
        self.quality, self._quality_period = restored, (start, until)


def _read(
    rows: Sequence[Row], ref_key: str | None
) -> tuple[list[Any], np.ndarray, np.ndarray, list[bool], list[Any]]:
    """What a judged window needs of each row besides its features, in one pass: its groups,
    score, the score reference's key, whether it was flagged and its card. A day's time window
    unpacks its rows as they are read (monitors.lazy.Unpacked, ~5 us each), so each pass
    over them costs ~0.26 s at 50,000 rows; these were six passes."""
    groups: list[Any] = []
    scores, refs, flagged, cards = [], [], [], []
    nan = math.nan
    for r in rows:
        groups.append(r.get("groups") or {})
        scores.append(nan if (v := r.get("score")) is None else v)
        if ref_key is not None:
            refs.append(nan if (v := r.get(ref_key)) is None else v)
        flagged.append(r.get("decision") != "approve")
        cards.append(r.get("card_id"))
    return groups, np.asarray(scores, dtype=float), np.asarray(refs, dtype=float), flagged, cards


def _volume(win: Window[Row]) -> dict[str, int] | None:
    """A time window's exact count per segment (``*`` and ``attribute=value``, as
    :class:`monitors.quality.VolumeMonitor` counts them) from its tallies; None for a window
    without (its rows are all of its events)."""
    if win.counts is None:
        return None
    out = {"*": win.n}
    for key, n in win.counts.items():
        if isinstance(key, tuple) and len(key) == 3 and key[0] == "g":
            out[f"{key[1]}={key[2]}"] = n
    return out
