"""Labels: concept drift on each model's error stream per label, and fairness on outcomes and
performance per window of labeled events (see :mod:`monitors.core`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from riverwatch.monitors.core.config import MODELS, Row, column
from riverwatch.monitors.core.state import MonitorState
from riverwatch.monitors.performance import PerformanceReport, performance
from riverwatch.monitors.policy.decision import Decision
from riverwatch.monitors.windows import Window


class LabelWindows(MonitorState):
    """Takes labels as they come and judges each window of labeled events."""

    def labels(self, pairs: Sequence[tuple[Row, int, float]], champion: str | None) -> Decision:
        """Labels ``(row, label, label_time)``: concept drift per label, windows of them."""
        out = Decision()
        events = []
        for row, label, at in pairs:
            self.as_of = max(self.as_of, at)
            t = float(row["epoch"])
            if self._judged(t):  # not an event of the warm-up, whose features were filling
                events += self._errors(row, label, t)
                self.label_rates.add(t, label, self._ref_period())
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
        if pairs:  # a follow-up was owed when it was set (ready then): a restarted monitor
            # collecting its reference again still owes it (the policy's state is restored)
            times = [float(row["epoch"]) for row, _, _ in pairs]
            seen: Window[Any] = Window("count", -1, min(times), max(times), [], [])
            out.extend(self.policy.followup(seen))
        for record in self.ledger.matured(self.as_of, self.c.label_delay_s):
            self.store("estimate", record)  # the realised figures replace the estimate
        return out.extend(self._label_shift())

    def _ref_period(self) -> tuple[float, float]:
        assert self.ref_from is not None and self.ref_until is not None
        return self.ref_from, self.ref_until

    def _label_shift(self) -> Decision:
        """The fraud rate among the labels of each time window matured by now against the
        reference's (:mod:`monitors.labelshift`; judged only once the reference is ready and
        its labels have matured)."""
        out = Decision()
        if self.ref_from is None or self.ref_until is None:
            return out
        rates = self.label_rates
        for i, frauds, n in rates.matured(self.as_of, self._ref_period()):
            if self.ready:
                win: Window[Any] = Window("time", i, *rates.window(i), [], [])
                out.extend(self.policy.label_shift(win, frauds, n, rates.ref))
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

    def labeled_window(self, win: Window[tuple[Row, int]], champion: str | None) -> Decision:
        """Fairness on outcomes and performance of one window of labeled events (shown while
        warming up too; judged by the policy on events from the reference's start on, the
        performance only once the reference is ready)."""
        judge = self._judged(win.window_start)
        rows = [r for r, _ in win.events]
        y = [lab for _, lab in win.events]
        fair = self._fairness(
            (r.get("groups") or {} for r in rows),
            y,
            (r["decision"] != "approve" for r in rows),
            (r.get("card_id") for r in rows),
        )
        self.store(
            "fairness", {**win.meta(), "attributes": {a: f.to_dict() for a, f in fair.items()}}
        )
        decision = self.policy.fairness(win, fair) if judge else Decision()
        reports = {}
        for model, key in MODELS:
            rep = self._performance(model, key, rows, y, champion)
            if rep is None:
                continue
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

    def _performance(
        self, model: str, key: str, rows: list[Row], y: list[int], champion: str | None
    ) -> PerformanceReport | None:
        """Performance of ``model`` (its score under ``key``) on a window's labeled events;
        None when it is not judged (no score of it; for the batch model, no champion or one
        that scored fewer than half of the events)."""
        sel = rows, y
        if model == "batch":
            # Judge the champion on the events it scored itself (see the policy's rollback).
            mine = [i for i, r in enumerate(rows) if r.get("batch_model") == champion]
            if champion is None or 2 * len(mine) < len(rows):
                return None
            sel = [rows[i] for i in mine], [y[i] for i in mine]
        scores = column(sel[0], key)
        if np.isnan(scores).all():
            return None
        return performance(
            [float(r["epoch"]) for r in sel[0]],
            scores,
            sel[1],
            [r.get("card_id", "") for r in sel[0]],
            as_of=self.as_of,
            horizon_s=self.c.label_delay_s,
            threshold=self.c.review_threshold,
            k=100,
            confidence=self.c.perf_confidence,
        )
