"""The policy's rules that only alert: data drift, prediction drift, label shift, data
quality, fairness and performance estimated before the labels (no control request: see
:mod:`monitors.policy.action_rules` for those that act)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from riverwatch.monitors.cbpe import Estimate
from riverwatch.monitors.columns import FeatureDrift
from riverwatch.monitors.concept.gate import material_rise, significant_rise
from riverwatch.monitors.estimated import drops as estimate_drops
from riverwatch.monitors.estimated import message as estimate_message
from riverwatch.monitors.fairness.report import AttributeFairness
from riverwatch.monitors.fairness.rules import findings as fairness_findings
from riverwatch.monitors.fairness.rules import message as fairness_message
from riverwatch.monitors.policy.decision import Decision, Severity
from riverwatch.monitors.policy.state import PolicyState, _num
from riverwatch.monitors.prediction import ScoreDrift
from riverwatch.monitors.quality import VolumeCheck
from riverwatch.monitors.windows import Window


class AlertRules(PolicyState):
    """Rules over findings about the inputs and the scores: alerts only."""

    def features(self, win: Window[Any], found: FeatureDrift) -> Decision:
        """Per-feature drift (:mod:`monitors.columns`): a ``drift`` alert when an important
        feature, or ``drift_share_warn`` of the features by weight, drifts ``drift_windows``
        windows in a row; it names the features, the statistic and the strongest segment."""
        over = bool(found.important) or found.weighted_share >= self.c.drift_share_warn
        streak = self._streak(f"features:{win.kind}", over)
        if streak < self.c.drift_windows or self._cool("drift", "features", win.window_end):
            return Decision()
        best = found.strongest or {}
        where = best.get("segment", "*")
        msg = (
            f"features drifted ({found.weighted_share:.0%} by importance): "
            f"{', '.join(found.drifted)}; strongest {best.get('column')} in "
            f"{'all events' if where == '*' else where} (PSI {best.get('psi', math.nan):.2f}, "
            f"Wasserstein {best.get('wasserstein', math.nan):.2f} std"
            + (
                f"; past the threshold in {', '.join(best['drifted_in'])}"
                if best.get("drifted_in")
                else ""
            )
            + ")"
        )
        if streak > 1:
            msg += f", {streak} windows in a row"
        sev: Severity = (
            "critical" if found.weighted_share >= self.c.drift_share_critical else "warning"
        )
        alert = self._alert(
            win,
            "drift",
            sev,
            "features",
            msg,
            drifted=found.drifted,
            important=found.important,
            weighted_share=found.weighted_share,
            strongest=best,
            windows_in_a_row=streak,
        )
        return Decision([alert])

    def label_shift(
        self, win: Window[Any], frauds: int, labels: int, ref: tuple[int, int]
    ) -> Decision:
        """Label (prior) shift, on a matured window of event time (:mod:`monitors.labelshift`):
        its fraud rate among ``labels`` labels (``frauds`` of them fraud) rose above the
        reference's (``ref``: frauds, labels) by ``label_shift_min_abs`` and
        ``label_shift_min_rel`` of it, both with ``label_shift_min_labels``+ labels, and
        significantly (:func:`monitors.concept.gate.significant_rise` at
        ``label_shift_alpha``, the concept gate's test), ``label_shift_windows`` windows in a
        row: a ``drift`` alert on subject ``labels``. A window short of labels breaks the
        streak."""
        c = self.c
        k0, n0 = ref
        before = k0 / n0 if n0 else math.nan
        after = frauds / labels if labels else math.nan
        over = (
            n0 >= c.label_shift_min_labels
            and material_rise(
                before, after, labels, min_abs=c.label_shift_min_abs,
                min_rel=c.label_shift_min_rel, min_count=c.label_shift_min_labels,
            )
            and significant_rise(k0, n0, frauds, labels, c.label_shift_alpha)
        )  # fmt: skip
        streak = self._streak("labels", over)
        if streak < c.label_shift_windows or self._cool("drift", "labels", win.window_end):
            return Decision()
        msg = (
            f"label shift: fraud rate among labels rose to {after:.2%} from {before:.2%} "
            f"({frauds} of {labels:,} labels of the window's events, against {k0} of {n0:,} "
            f"in the reference; {streak} windows in a row)"
        )
        details = {
            "finding": "label_shift", "frauds": frauds, "labels": labels, "rate": after,
            "reference_frauds": k0, "reference_labels": n0, "reference_rate": before,
            "windows_in_a_row": streak,
        }  # fmt: skip
        return Decision([self._alert(win, "drift", "warning", "labels", msg, **details)])

    def prediction(self, win: Window[Any], pred: ScoreDrift) -> Decision:
        """Prediction drift: the score distribution (PSI) or the flagged share moved, each
        ``drift_windows`` windows (of one kind) in a row, as the features: one window's
        flagged share jumps by chance more often than its test says, because flagged payments
        come in sprees (a compromised card's, a terminal's) beyond the dispersion the reference
        week showed (the scenario benchmark's no-change seed 11: 1.18% against 0.46% on one
        day, 5.8 standard deviations, with nothing injected); a real shift persists."""
        out = Decision()
        score = self._streak(f"score:{win.kind}", pred.drifted)
        if score >= self.c.drift_windows and not self._cool("drift", "score", win.window_end):
            whose = "the champion's" if pred.score == "batch_score" else "the combined"
            msg = (
                f"{whose} score distribution drifted (PSI {pred.psi:.3f}), {score} windows in a row"
            )
            alert = self._alert(
                win, "drift", "warning", "score", msg, psi=pred.psi, score=pred.score,
                windows_in_a_row=score,
            )  # fmt: skip
            out.alerts.append(alert)
        flagged = self._streak(f"flagged:{win.kind}", pred.flagged_drifted)
        if flagged >= self.c.drift_windows and not self._cool("drift", "flagged", win.window_end):
            spread = (
                f", the reference's dispersion {pred.flagged_dispersion:.1f} of cards flagged "
                "together"
                if pred.flagged_dispersion >= 1.05
                else ""
            )
            msg = (
                f"flagged share rose to {pred.flagged:.2%} from {pred.flagged_reference:.2%} "
                f"({pred.flagged_z:.1f} standard deviations{spread}), {flagged} windows in a row"
            )
            out.alerts.append(
                self._alert(
                    win,
                    "drift",
                    "warning",
                    "flagged",
                    msg,
                    flagged=pred.flagged,
                    flagged_reference=pred.flagged_reference,
                    z=pred.flagged_z,
                    dispersion=pred.flagged_dispersion,
                    windows_in_a_row=flagged,
                )
            )
        return out

    def _streak(self, key: str, over: bool) -> int:
        """Windows in a row (of one kind) with ``over``, ``key``'s streak counted on."""
        streak = self._drift_streak[key] = self._drift_streak.get(key, 0) + 1 if over else 0
        return streak

    def quality(self, win: Window[Any], vol: VolumeCheck) -> Decision:
        """Data quality: a ``quality`` alert per segment whose volume dropped."""
        out = Decision()
        for d in vol.drops:
            if self._cool("quality", d["segment"], win.window_end):
                continue
            seg = "all events" if d["segment"] == "*" else d["segment"]
            msg = (
                f"volume of {seg} fell to {d['observed']:.0f} from {d['expected']:.0f} expected "
                f"({d['ratio']:.0%}): a producer silent?"
            )
            out.alerts.append(self._alert(win, "quality", "warning", d["segment"], msg, **d))
        return out

    def data_quality(self, win: Window[Any], findings: Iterable[Mapping[str, Any]]) -> Decision:
        """A ``quality`` alert per finding of :mod:`monitors.dataquality` (a field's missing,
        invalid or out-of-range rate rose; new values of a field), cooldown per subject."""
        out = Decision()
        for f in findings:
            if not self._cool("quality", f["subject"], win.window_end):
                alert = self._alert(
                    win, "quality", "warning", f["subject"], f["message"], **f["details"]
                )
                out.alerts.append(alert)
        return out

    def fairness(self, win: Window[Any], reports: Mapping[str, AttributeFairness]) -> Decision:
        """One ``fairness`` alert per attribute with a gap whose bootstrap interval clears its
        threshold (:mod:`monitors.fairness.rules`: parity and equalized-odds ratios and
        differences), naming the attribute, the groups, the metrics and the figures."""
        out = Decision()
        c = self.c
        for attr, rep in sorted(reports.items()):
            found = fairness_findings(
                rep,
                min_ratio=c.fairness_min_ratio,
                tolerance=c.fairness_tolerance,
                odds_tolerance=c.fairness_odds_tolerance,
            )
            if not found or self._cool("fairness", attr, win.window_end):
                continue
            groups = sorted({g for f in found for g in (f.high, f.low)})
            sig = [rep.intervals[r] for r in sorted({f.rate for f in found})]
            out.alerts.append(
                self._alert(
                    win,
                    "fairness",
                    "warning",
                    attr,
                    fairness_message(attr, found),
                    attribute=attr,
                    groups=groups,
                    metrics=sorted({f.metric for f in found}),
                    findings=[f.to_dict() for f in found],
                    intervals=[vars(i) for i in sig],
                    demographic_parity_difference=rep.demographic_parity_difference,
                    demographic_parity_ratio=_num(rep.demographic_parity_ratio),
                    equalized_odds_difference=rep.equalized_odds_difference,
                    equalized_odds_ratio=_num(rep.equalized_odds_ratio),
                )
            )
        return out

    def estimated(self, win: Window[Any], est: Estimate, ref: Estimate | None) -> Decision:
        """Performance estimated from the scores (CBPE) fell materially below the reference's
        estimate: a ``performance`` alert on subject ``estimated`` (:mod:`monitors.estimated`);
        no retrain: nothing is known about the labels yet."""
        c = self.c
        found = [] if ref is None else estimate_drops(
            est, ref, min_abs=c.estimate_min_abs, min_rel=c.estimate_min_rel,
            min_count=c.estimate_min_count,
        )  # fmt: skip
        if not found or self._cool("performance", "estimated", win.window_end):
            return Decision()
        msg = estimate_message(found)
        details = {"finding": "estimated_drop", "drops": [d.to_dict() for d in found]}
        return Decision([self._alert(win, "performance", "warning", "estimated", msg, **details)])
