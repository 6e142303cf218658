"""The monitor's pure core: scored rows and labels in, findings and a :class:`Decision` out.

No Redis, Kafka or clock: ``streams.monitor.runner`` feeds it from the topics (joining rows
from Redis and storing results), ``bench.monitor`` feeds it straight from the simulator.

Warm-up and reference (the monitor knows when its inputs can be judged):

* features over windows of up to ``warmup_s`` (the longest feature window, 30 days) are still
  filling before that much event time has passed since the first event, so the reference
  collects the ``reference_s`` of events *after* it, and no window is judged before the
  reference is complete; :meth:`MonitorCore.status` says "warming up (reference from ...)";
* label-based findings (concept drift, performance, fairness on outcomes) count only labels of
  events from the reference's start on: those come a label delay later, and the concept
  detectors need ``min_labels`` of them (``ConceptDriftMonitor.min_count``) before a rise counts
  (label windows of the warm-up are computed and stored, for the figures, but not judged);
* :meth:`MonitorCore.restart` moves the reference (an explicit request, or a new champion
  without enough training rows): a new one is collected from then on, with no feature warm-up;
  :meth:`MonitorCore.restart_scores` moves only the score reference (an online-model reset
  changes the scores, not the inputs: features, volume and fairness are still judged);
  :meth:`MonitorCore.set_reference` sets one at once (a champion's training rows).

Per window of scored events (once the reference is ready): per-feature drift overall and per
segment (:mod:`monitors.columns`), prediction drift (score PSI and the flagged share), selection
-rate parity per protected attribute (decisions need no label), and the volume of each segment
(a producer that goes silent); data quality per field (:mod:`monitors.dataquality`, its
reference collected over the same period, the rejected records read through ``rejected``);
performance estimated from the scores (CBPE) against the reference's estimate
(:mod:`monitors.estimated`; stored as ``estimate``, replaced by the realised figures once the
window's labels mature). Per window of labels: fairness on outcomes (selection rate and
equalized odds, :mod:`monitors.fairness_rules`) and performance; per label: concept drift on
each model's error stream. The :class:`monitors.policy.Policy`
turns findings into alerts and control requests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riverwatch.monitors.cbpe import Estimate, estimate
from riverwatch.monitors.columns import ColumnDrift
from riverwatch.monitors.concept import ConceptDriftMonitor
from riverwatch.monitors.dataquality import DataQuality, QualityCheck, QualityConfig
from riverwatch.monitors.estimated import EstimateLedger
from riverwatch.monitors.fairness import FairnessCounts
from riverwatch.monitors.performance import performance
from riverwatch.monitors.policy import Decision, Policy, PolicyConfig
from riverwatch.monitors.prediction import ScoreDriftMonitor
from riverwatch.monitors.quality import VolumeMonitor
from riverwatch.monitors.windows import CountWindows, TimeWindows, Window, iso

DAY = 86_400.0
MODELS = (("combined", "score"), ("online", "online_score"), ("batch", "batch_score"))
Row = dict[str, Any]
Store = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class CoreConfig:
    """What the core needs to know; ``streams.monitor.data.core_config`` builds it."""

    features: tuple[str, ...]
    drift_columns: tuple[str, ...]
    review_threshold: float = 0.5
    label_delay_s: float = 7 * DAY
    window_s: float = DAY
    window_size: int = 0
    label_window: int = 2000
    warmup_s: float = 30 * DAY  # the longest feature window
    reference_s: float = 7 * DAY  # event time the reference covers (a week: every weekday)
    reference_rows: int = 20_000
    min_reference_rows: int = 200
    drift_min_psi: float = 0.1
    drift_alpha: float = 0.01
    segment_min_rows: int = 300
    fairness_confidence: float = 0.99
    fairness_tolerance: float = 0.02
    perf_confidence: float = 0.95
    max_group_values: int = 256  # values of an attribute tracked apart; the rest as "(other)"
    weights: dict[str, float] | None = None  # the champion's feature importance
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)  # monitors.dataquality


def default_frame(rows: Sequence[Row], names: Sequence[str]) -> pd.DataFrame:
    """Feature matrix of rows whose ``x`` holds exactly ``names``."""
    return pd.DataFrame([r["x"] for r in rows], columns=list(names), dtype=float)


class MonitorCore:
    """Windows, reference, statistics and policy of one monitor (see the module docstring)."""

    def __init__(
        self,
        config: CoreConfig,
        concept: ConceptDriftMonitor,
        policy: Policy | None = None,
        *,
        store: Store | None = None,
        frame: Callable[[Sequence[Row], Sequence[str]], pd.DataFrame] = default_frame,
        rejected: Callable[[], Mapping[str, int]] | None = None,
    ):
        self.c = config
        self.concept = concept
        self.policy = policy or Policy(config.policy)
        self.store: Store = store or (lambda kind, result: None)
        self.frame = frame
        self.windows: list[CountWindows[Row] | TimeWindows[Row]] = []
        if config.window_size:
            self.windows.append(CountWindows(config.window_size))
        if config.window_s:
            self.windows.append(TimeWindows(config.window_s))
        self.labeled: CountWindows[tuple[Row, int]] = CountWindows(config.label_window)
        self.as_of = -math.inf
        self.first: float | None = None
        self.ref_from: float | None = None  # the reference collects events from here ...
        self.ref_until: float | None = None  # ... to here
        self._ref_rows: list[Row] = []
        self._rng = np.random.default_rng(0)
        self._seen = 0
        # a new score reference only (after an online-model reset), collected to here
        self._scores_until: float | None = None
        self._ref_scores: list[float] = []
        self.features: ColumnDrift | None = None
        self.scores_ref: ScoreDriftMonitor | None = None
        self.volume: VolumeMonitor | None = None
        self.ref_info: dict[str, Any] = {}
        self.weights = config.weights
        # performance before labels: the reference scores' CBPE estimate, and the judged
        # windows' estimates waiting for their labels (monitors.estimated)
        self.ref_estimate: Estimate | None = None
        self.ledger = EstimateLedger()
        # observations pooled into "(other)" past max_group_values, per monitor (the worker
        # exports them as riverwatch_group_values_pooled_total)
        self.pooled = {"concept": 0, "fairness": 0}
        # data quality per window kind, its reference collected over the reference period;
        # ``rejected`` reads the rejected records' counters (core.rejects) once per window
        self.rejected = rejected or (lambda: {})
        self.quality: dict[str, DataQuality] = {}
        self._quality_period = (math.inf, math.inf)

    # -- reference ---------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Whether windows are judged (a reference exists)."""
        return self.features is not None

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

    def _collect_score(self, row: Row, t: float) -> None:
        if self._scores_until is None or t >= self._scores_until:
            return
        s = float(row.get("score", math.nan))
        if math.isfinite(s) and len(self._ref_scores) < self.c.reference_rows:
            self._ref_scores.append(s)

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
        if self.first is not None:  # rows of the warm-up: their features were still filling
            rows = [r for r in rows if float(r["epoch"]) >= self.first + self.c.warmup_s]
        if len(rows) < self.c.min_reference_rows:
            return False
        rows = list(rows)
        total = total or len(rows)
        if len(rows) > self.c.reference_rows:
            pick = self._rng.choice(len(rows), self.c.reference_rows, replace=False)
            rows = [rows[i] for i in sorted(pick)]
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
        sc = np.asarray([r.get("score", math.nan) for r in rows], dtype=float)
        finite = sc[np.isfinite(sc)]
        self.scores_ref = (
            ScoreDriftMonitor(finite, threshold=self.c.review_threshold) if len(finite) else None
        )
        self.ref_estimate = self._estimate(finite) if len(finite) else None
        t = [float(r["epoch"]) for r in rows]
        self.volume = VolumeMonitor(groups, span_s=max(t) - min(t) or 1.0, scale=total / len(rows))
        if self.ref_from is None:
            self.ref_from = min(t)
        self.ref_until = max(t) if until is None else until
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

    def _quality_from(self, start: float, until: float) -> None:
        """Data quality collects its reference over ``[start, until)`` too."""
        self._quality_period = (start, until)
        for q in self.quality.values():
            q.collect(start, until)

    def _quality(self, win: Window[Row], frame: Callable[[], pd.DataFrame]) -> QualityCheck:
        q = self.quality.get(win.kind)
        if q is None:
            numeric = [c for c in self.c.features if c == "amount" or c.startswith("attr_")]
            q = DataQuality(self.c.quality, numeric, partitions=win.kind == "time")
            self.quality[win.kind] = q
            q.collect(*self._quality_period)
        return q.window(win.window_start, win.window_end, win.events, frame, self.rejected())

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

    # -- scores ------------------------------------------------------------------------------
    def scores(self, rows: Sequence[Row]) -> Decision:
        """Window scored rows (each with ``x``, ``score``, ``decision``, ``groups``, ``epoch``)."""
        out = Decision()
        for row in rows:
            t = float(row["epoch"])
            self.as_of = max(self.as_of, t)
            self._collect(row, t)
            self._collect_score(row, t)
            for w in self.windows:
                for win in w.add(row, t):
                    out.extend(self.window(win))
        return out

    def window(self, win: Window[Row]) -> Decision:
        """Judge one closed window of scored rows (nothing while warming up)."""
        if not self.ready and self.ref_until is not None and win.window_end >= self.ref_until:
            done = self.set_reference(
                self._ref_rows, "warm-up", total=self._seen, until=self.ref_until
            )
            if not done:  # too few rows (a restart lost them): collect a new reference from here
                self.ref_from = win.window_end
                self.ref_until = win.window_end + self.c.reference_s
                self._quality_from(self.ref_from, self.ref_until)
                self._seen = 0
            self._ref_rows = []
        if self._scores_until is not None and win.window_end >= self._scores_until:
            ref = np.asarray(self._ref_scores, dtype=float)
            self.scores_ref = (
                ScoreDriftMonitor(ref, threshold=self.c.review_threshold) if len(ref) else None
            )
            self.ref_estimate = self._estimate(ref) if len(ref) else None
            self._scores_until, self._ref_scores = None, []
        rows = win.events
        frame = functools.cache(lambda: self.frame(rows, self.c.features))
        quality = self._quality(win, frame)
        if not self.ready or self.ref_until is None or win.window_start < self.ref_until:
            self.store("drift", {**win.meta(), "status": self.status()})
            return Decision()
        assert self.features is not None and self.volume is not None
        groups = [r.get("groups") or {} for r in rows]
        data = self.features.compare(frame(), groups)
        scores = np.asarray([r.get("score", math.nan) for r in rows], dtype=float)
        pred = self.scores_ref.compare(scores) if self.scores_ref else None
        vol = self.volume.compare(groups, span_s=win.window_end - win.window_start)
        fc = FairnessCounts(max_groups=self.c.max_group_values)
        fc.update_many(groups, (0 for _ in rows), (r.get("decision") != "approve" for r in rows))
        fair = fc.report(
            n_boot=1000,
            confidence=self.c.fairness_confidence,
            tolerance=self.c.fairness_tolerance,
            rates=("selection_rate",),
        )
        self.pooled["fairness"] += fc.pooled  # counted as the report folds the tail
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
        out = self.policy.features(win, data)
        if pred is not None:
            out.extend(self.policy.prediction(win, pred))
        if win.kind == "time":  # a count window of a backlog consumed partition by partition
            out.extend(self.policy.quality(win, vol))  # spans more time than its events
        if quality.volume is not None:  # a partition of transactions gone silent
            out.extend(self.policy.quality(win, quality.volume))
        out.extend(self.policy.data_quality(win, quality.findings))
        out.extend(self.policy.fairness(win, fair))
        out.extend(self.policy.estimated(win, est, self.ref_estimate))
        return out

    def _estimate(self, scores: np.ndarray) -> Estimate:
        return estimate(scores, self.c.review_threshold, confidence=self.c.perf_confidence)

    # -- labels ------------------------------------------------------------------------------
    def labels(self, pairs: Sequence[tuple[Row, int, float]], champion: str | None) -> Decision:
        """Labels ``(row, label, label_time)``: concept drift per label, windows of them."""
        out = Decision()
        events = []
        for row, label, at in pairs:
            self.as_of = max(self.as_of, at)
            t = float(row["epoch"])
            if self._judged(t):  # not an event of the warm-up, whose features were filling
                events += self._errors(row, label, t)
            score = row.get("score")
            if isinstance(score, (int, float)) and math.isfinite(score):
                self.ledger.label(t, score >= self.c.review_threshold, label)
            for win in self.labeled.add((row, label), t):
                out.extend(self.labeled_window(win, champion))
        if events:
            span: Window[Any] = Window("count", -1, events[0].time, events[-1].time, [], [])
            self.store("concept", {"events": [e.to_dict() for e in events], **span.meta()})
            if self.ready:  # no concept alert while warming up (the detectors learn meanwhile)
                out.extend(self.policy.concept(span, events))
        for record in self.ledger.matured(self.as_of, self.c.label_delay_s):
            self.store("estimate", record)  # the realised figures replace the estimate
        return out

    def _errors(self, row: Row, label: int, t: float) -> list[Any]:
        found = []
        dropped = self.concept.dropped
        for model, key in MODELS:
            score = row.get(key)
            if model == "combined":
                flagged = row.get("decision") != "approve"
            elif score is None:
                continue
            else:
                flagged = float(score) >= self.c.review_threshold
            found += self.concept.update(model, float(flagged != bool(label)), row.get("groups"), t)
        self.pooled["concept"] += self.concept.dropped - dropped
        return found

    def _judged(self, t: float) -> bool:
        return self.ref_from is not None and t >= self.ref_from

    def labeled_window(self, win: Window[tuple[Row, int]], champion: str | None) -> Decision:
        """Fairness on outcomes and performance of one window of labeled events (shown while
        warming up too; judged by the policy on events from the reference's start on, the
        performance only once the reference is ready)."""
        judge = self._judged(win.window_start)
        rows = [r for r, _ in win.events]
        y = [lab for _, lab in win.events]
        fc = FairnessCounts(max_groups=self.c.max_group_values)
        fc.update_many(
            (r.get("groups") or {} for r in rows), y, (r["decision"] != "approve" for r in rows)
        )
        fair = fc.report(
            n_boot=1000, confidence=self.c.fairness_confidence, tolerance=self.c.fairness_tolerance
        )
        self.pooled["fairness"] += fc.pooled
        self.store(
            "fairness", {**win.meta(), "attributes": {a: f.to_dict() for a, f in fair.items()}}
        )
        decision = self.policy.fairness(win, fair) if judge else Decision()
        reports = {}
        for model, key in MODELS:
            sel = rows, y
            if model == "batch":
                # Judge the champion on the events it scored itself (see the policy's rollback).
                mine = [i for i, r in enumerate(rows) if r.get("batch_model") == champion]
                if champion is None or 2 * len(mine) < len(rows):
                    continue
                sel = [rows[i] for i in mine], [y[i] for i in mine]
            scores = [r.get(key) for r in sel[0]]
            if all(v is None for v in scores):
                continue
            rep = performance(
                [float(r["epoch"]) for r in sel[0]],
                [math.nan if v is None else v for v in scores],
                sel[1],
                [r.get("card_id", "") for r in sel[0]],
                as_of=self.as_of,
                horizon_s=self.c.label_delay_s,
                threshold=self.c.review_threshold,
                k=100,
                confidence=self.c.perf_confidence,
            )
            reports[model] = rep.to_dict()
            if not (judge and self.ready):  # no performance alert while warming up
                continue
            decision.extend(
                self.policy.perf(
                    win,
                    model,
                    reports[model],
                    provisional=rep.provisional,
                    champion=champion if model == "batch" else None,
                )
            )
        self.store(
            "performance",
            {**win.meta(), "as_of": self.as_of, "champion": champion, "models": reports},
        )
        return decision
