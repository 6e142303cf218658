"""Warm-up and reference of the monitor core: when its inputs can be judged, and against what
(see :mod:`monitors.core`)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from riverwatch.monitors.columns import ColumnDrift
from riverwatch.monitors.core.config import DAY, MODELS, Row, column
from riverwatch.monitors.core.state import MonitorState
from riverwatch.monitors.lazy import Unpacked
from riverwatch.monitors.prediction import ScoreDriftMonitor, flagged_dispersion
from riverwatch.monitors.quality import VolumeMonitor
from riverwatch.monitors.windows import Window, iso


class ReferenceTracking(MonitorState):
    """Collects, sets and restarts the reference the windows are judged against."""

    def status(self) -> dict[str, Any]:
        """``{"state": "warming up" | "ready", "message", "reference_from", ...}``."""
        if self.ready:
            out = {"state": "ready", "message": "ready", **self.ref_info}
            if self._scores_until is not None:
                out["scores_reference_until"] = iso(self._scores_until)
            return out
        start = None if self.ref_from is None else iso(self.ref_from)
        return {
            "state": "warming up",
            "message": f"warming up (reference from {start or 'the first events'})",
            "reference_from": start,
            "reference_until": None if self.ref_until is None else iso(self.ref_until),
        }

    def restart(self, at: float) -> None:
        """Collect a new reference from event time ``at`` (features are warm already)."""
        self.features = self.scores_ref = self.volume = self.ref_estimate = None
        self.ref_from, self.ref_until = at, at + self.c.reference_s
        self._quality_from(self.ref_from, self.ref_until)
        self._ref_rows, self._seen = [], 0
        for model, _ in MODELS:
            self.concept.reset(model)

    def restart_scores(self, at: float) -> None:
        """A reset online model changes the scores, not the inputs: the score reference is
        collected afresh from event time ``at`` (prediction drift is not judged until then);
        the feature and volume references and the readiness stay."""
        self.scores_ref = self.ref_estimate = None
        self._scores_until = at + self.c.reference_s
        self._ref_scores = []

    @property
    def _cluster_s(self) -> float:
        """The span of a card's cluster of flagged events in the reference: a time window (a
        day with count windows only)."""
        return self.c.window_s if self.c.window_s > 0 else DAY

    def _collect_score(self, row: Row, t: float) -> None:
        if self._scores_until is None or t >= self._scores_until:
            return
        s = float(row.get("score", math.nan))
        if math.isfinite(s) and len(self._ref_scores) < self.c.reference_rows:
            b = row.get("batch_score")
            card = zlib.crc32(str(row.get("card_id")).encode())  # a float-exact card key
            day = t // self._cluster_s
            self._ref_scores.append((s, math.nan if b is None else float(b), card, day))

    def _prediction_reference(
        self,
        served: np.ndarray,
        batch: np.ndarray,
        clusters: Sequence[Hashable] | None = None,
        sampled: float = 1.0,
    ) -> None:
        """The score reference of a period: ``served`` (combined) and ``batch`` (the champion's)
        scores of its events. Prediction drift compares the champion's scores when it scored
        at least half of the period: a fixed function of the inputs, so their distribution
        moves only when the inputs do. The combined score also moves while the online model
        learns, in a stream that does not change: in the demo's calm days (seed 21, 21 runs of
        session 24) it rose day by day to 0.21-0.29 in the runs whose blend served mostly the
        online model, while the champion's stayed at 0.01-0.09. Without such a champion, the
        combined score. The flagged share is the served decisions', judged on the combined
        score either way, its spread widened by the period's dispersion (``clusters``: each
        event's card and window; ``sampled``: the share of the period's events the scores
        are; :func:`monitors.prediction.flagged_dispersion`)."""
        keep = np.isfinite(served)
        dispersion = 1.0
        if clusters is not None:
            kept = [c for c, k in zip(clusters, keep.tolist(), strict=True) if k]
            flagged = served[keep] >= self.c.review_threshold
            dispersion = flagged_dispersion(flagged, kept, sampled)
        served = served[keep]
        fixed = batch[np.isfinite(batch)]
        use_batch = len(fixed) > 0 and 2 * len(fixed) >= len(served)
        self.scores_ref = (
            ScoreDriftMonitor(
                fixed if use_batch else served,
                key="batch_score" if use_batch else "score",
                flagged_reference=served,
                threshold=self.c.review_threshold,
                flagged_dispersion=dispersion,
            )
            if len(served)
            else None
        )
        self.ref_estimate = self._estimate(served) if len(served) else None

    def set_reference(
        self,
        rows: Sequence[Row],
        source: str,
        total: int | None = None,
        weights: dict[str, float] | None = None,
        until: float | None = None,
    ) -> bool:
        """Use ``rows`` (e.g. the champion's training window) as the reference now; ``total``
        is the number of events they were sampled from (the volume's baseline); ``weights``
        the champion's feature importance (kept for later references); windows starting
        before ``until`` (default: the last row's time) are not judged."""
        if weights is not None:
            self.weights = {c: weights.get(c, 0.0) for c in self.c.drift_columns}
        # Each pass reads the rows one by one and only the sample is kept: a champion's
        # training window may be rows made as they are read (streams.monitor.data.FrameRows),
        # a quarter of a million of them, which as a list of dicts took ~250 MB at once.
        if self.first is not None:  # rows of the warm-up: their features were still filling
            cut = self.first + self.c.warmup_s
            kept = [i for i, r in enumerate(rows) if float(r["epoch"]) >= cut]
            rows = Unpacked(kept, rows.__getitem__)  # a view: the kept rows, made when read
        if len(rows) < self.c.min_reference_rows:
            return False
        total = total or len(rows)
        labels = [int(r["label"]) for r in rows if r.get("label") is not None]
        if len(rows) > self.c.reference_rows:
            pick = self._rng.choice(len(rows), self.c.reference_rows, replace=False)
            rows = [rows[i] for i in sorted(pick)]
        else:
            rows = list(rows)
        sampled = len(rows) / max(total, len(rows))
        df = self.frame(rows, self.c.features)[list(self.c.drift_columns)]
        groups = [r.get("groups") or {} for r in rows]
        self.features = ColumnDrift(
            df,
            groups,
            weights=self.weights,
            alpha=self.c.drift_alpha,
            min_psi=self.c.drift_min_psi,
            min_rows=self.c.segment_min_rows,
        )
        self._prediction_reference(
            column(rows, "score"),
            column(rows, "batch_score"),
            [(r.get("card_id"), float(r["epoch"]) // self._cluster_s) for r in rows],
            sampled,
        )
        t = [float(r["epoch"]) for r in rows]
        self.volume = VolumeMonitor(groups, span_s=max(t) - min(t) or 1.0, scale=total / len(rows))
        if self.ref_from is None:
            self.ref_from = min(t)
        self.ref_until = max(t) if until is None else until
        if labels:  # rows with their labels (a champion's): the label-shift reference too
            period = (self.ref_from, self.ref_until)
            self.label_rates.set_reference(period, sum(labels), len(labels), self.as_of)
        self._scores_until, self._ref_scores = None, []
        self.ref_info = {
            "source": source,
            "rows": len(rows),
            "from": iso(min(t)),
            "until": iso(max(t)),
        }
        return True

    def begin(self, first: float) -> None:
        """The first event's time: the warm-up runs from it (:meth:`scores` sets it itself
        when nobody did)."""
        self.first = first
        if self.ref_from is None:
            self.ref_from = first + self.c.warmup_s
            self.ref_until = self.ref_from + self.c.reference_s
        if math.isinf(self._quality_period[0]):  # (a champion's rows may be the reference)
            start = first + self.c.warmup_s
            self._quality_from(start, start + self.c.reference_s)

    def _quality_from(self, start: float, until: float, keep_ready: bool = False) -> None:
        """Data quality collects its reference over ``[start, until)`` too (with
        ``keep_ready``, a window kind whose reference is complete keeps it)."""
        self._quality_period = (start, until)
        self.quality_changed = True
        for q in self.quality.values():
            if not (keep_ready and q.ready):
                q.collect(start, until)

    def _collect(self, row: Row, t: float) -> None:
        if self.first is None:
            self.begin(t)
        assert self.ref_from is not None
        if self.ready or t < self.ref_from or (self.ref_until is not None and t >= self.ref_until):
            return  # before the reference period, or after it (a window still closing)
        self._seen += 1  # reservoir sampling: a uniform sample of the reference period
        if len(self._ref_rows) < self.c.reference_rows:
            self._ref_rows.append(row)
        elif (j := int(self._rng.integers(self._seen))) < self.c.reference_rows:
            self._ref_rows[j] = row

    def _close_references(self, win: Window[Row]) -> None:
        """A reference whose period ends with ``win`` is set: the warm-up's (or, with too
        few rows, a new period from here), and a score reference collected after a reset."""
        if not self.ready and self.ref_until is not None and win.window_end >= self.ref_until:
            done = self.set_reference(
                self._ref_rows, "warm-up", total=self._seen, until=self.ref_until
            )
            if not done:  # too few rows (a restart lost them): collect a new reference from here
                self.ref_from = win.window_end
                self.ref_until = win.window_end + self.c.reference_s
                # data quality's reference is persisted (the runner restores it): kept
                self._quality_from(self.ref_from, self.ref_until, keep_ready=True)
                self._seen = 0
            self._ref_rows = []
        if self._scores_until is not None and win.window_end >= self._scores_until:
            ref = np.asarray(self._ref_scores, dtype=float).reshape(-1, 4)
            cards = list(zip(ref[:, 2].tolist(), ref[:, 3].tolist(), strict=True))
            self._prediction_reference(ref[:, 0], ref[:, 1], cards)
            self._scores_until, self._ref_scores = None, []
