"""The monitoring policy: findings about a window -> alerts, control requests, an audit trail.

Pure: findings of :mod:`monitors.drift`, ``concept``, ``fairness`` and ``performance`` in,
:class:`Decision` s (``core.events.Alert``/``Control`` plus audit entries) out.
State: cooldowns, performance baselines and the champion seen last.

Rules (thresholds in :class:`PolicyConfig`):

* data drift (share of drifted features, over ``drift_windows`` windows in a row) or
  prediction drift alone: a ``drift`` alert;
* a performance drop on a matured (non-provisional) window, or concept drift on the error
  stream of the batch/combined model: a ``performance`` alert and a ``retrain`` request. A
  window's metric counts as below a limit only when its upper confidence bound
  (``<metric>_upper`` in the report, see :func:`monitors.performance.ap_upper`) is below it
  too: a window holds a few dozen frauds, and its AP alone falls 0.1 below the baseline by
  chance every few windows; and only after ``perf_windows`` such windows in a row (the bound
  alone still lets one window in twenty through);
* concept drift on the online model: a ``reset`` request for it;
* a newly promoted champion that does worse than its predecessor on its first matured window:
  a ``rollback`` request;
* fairness: a ``fairness`` alert only when a bootstrap interval says the gap is real and past
  its threshold (parity ratio below 0.8, a difference above its tolerance, ...);
* performance estimated from the scores (before labels) fell below the reference's estimate
  by a material amount: a ``performance`` alert on ``estimated`` (no action).

Cooldowns run on event time per (kind, subject), so a replay makes the same decisions and one
incident is one alert. Every action is also announced as a ``retrain`` alert and audited.

>>> from riverwatch.monitors.windows import Window
>>> pol = Policy(PolicyConfig(cooldown_s=3600), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
>>> win = Window("count", 0, 0.0, 600.0, [], [])
>>> d = pol.perf(win, "batch", {"ap": 0.8}, provisional=False, champion="batch-1")
>>> d.alerts, d.controls
([], [])
>>> d = pol.perf(win, "batch", {"ap": 0.5}, provisional=False, champion="batch-1")
>>> [a.kind for a in d.alerts], [c.action for c in d.controls]
(['performance', 'retrain'], ['retrain'])
>>> d.alerts[0].details["window_end"]
'1970-01-01T00:10:00+00:00'
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from riverwatch.core.outputs import Alert, Control
from riverwatch.monitors.cbpe import Estimate
from riverwatch.monitors.columns import FeatureDrift
from riverwatch.monitors.concept import ALL, DriftEvent
from riverwatch.monitors.estimated import drops as estimate_drops
from riverwatch.monitors.estimated import message as estimate_message
from riverwatch.monitors.fairness import AttributeFairness
from riverwatch.monitors.fairness_rules import findings as fairness_findings
from riverwatch.monitors.fairness_rules import message as fairness_message
from riverwatch.monitors.prediction import ScoreDrift
from riverwatch.monitors.quality import VolumeCheck
from riverwatch.monitors.windows import Window

Severity = Literal["info", "warning", "critical"]
Action = Literal["retrain", "reset", "rollback"]


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds of the policy (the worker builds them from RIVERWATCH_MONITOR_* settings)."""

    drift_share_warn: float = 0.5  # share of drifted features that warns (Evidently's default)
    drift_share_critical: float = 0.75  # ... and that is critical
    # Consecutive windows (of one kind) over the share before a data-drift alert: a single
    # window (a day, a few thousand events) differs from the reference by chance more often
    # than a per-feature test's threshold suggests; a real shift persists.
    drift_windows: int = 2
    perf_metric: str = "ap"  # the metric whose drop requests a retrain
    perf_drop: float = 0.1  # absolute drop below the baseline that counts as a drop
    baseline_windows: int = 3  # healthy matured windows averaged into the baseline
    # Matured windows in a row below the limit before a performance drop is acted on. Each
    # window's bound is a test at 1 - ``perf_confidence`` (5 %), asked ~1.5 times a day per
    # model: one window alone is a false drop every few weeks of a calm stream (the scenario
    # benchmark's no-change runs: 3 of 6), as with ``drift_windows`` a real drop persists.
    perf_windows: int = 1
    rollback_margin: float = 0.02  # a new champion this much worse than its predecessor
    cooldown_s: float = 6 * 3600.0  # event-time seconds between two alerts of one subject
    retrain_models: tuple[str, ...] = ("batch", "combined")
    reset_models: tuple[str, ...] = ("online",)
    batch_model: str = "batch"  # the model the registry's champion serves
    audit_max: int = 1000
    # performance estimated before labels (monitors.estimated): a drop counts when the
    # estimate's interval lies below the reference's estimate by max(min_abs, min_rel * it),
    # with at least min_count events behind the metric (flagged, or expected frauds)
    estimate_min_abs: float = 0.1
    estimate_min_rel: float = 0.2
    estimate_min_count: int = 30
    # fairness (monitors.fairness_rules), after fairlearn's conventions
    fairness_min_ratio: float = 0.8  # parity / equalized-odds ratio (the four-fifths rule)
    fairness_tolerance: float = 0.02  # selection-rate difference
    fairness_odds_tolerance: float = 0.02  # TPR / FPR difference (equalized odds)


@dataclass
class Decision:
    """What the policy wants published; ``audit`` has one entry per control request."""

    alerts: list[Alert] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Decision) -> Decision:
        """Append ``other``'s items (in place); returns self."""
        self.alerts += other.alerts
        self.controls += other.controls
        self.audit += other.audit
        return self


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _bound(upper: float | None) -> str:
    return "" if upper is None else f" (upper bound {upper:.3f})"


class Policy:
    """Stateful rules over findings; see the module docstring."""

    def __init__(
        self, config: PolicyConfig | None = None, clock: Callable[[], datetime] | None = None
    ):
        self.c = config or PolicyConfig()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.audit: deque[dict[str, Any]] = deque(maxlen=self.c.audit_max)
        self.suppressed = 0
        self._last: dict[tuple[str, str], float] = {}  # (kind, subject) -> event time
        self._history: dict[str, deque[float]] = {}  # model -> healthy metric values
        self._champion: str | None = None
        self._pending: tuple[str, str, float] | None = None  # (new, predecessor, its value)
        self._last_value: dict[str, float] = {}
        self._drift_streak: dict[str, int] = {}  # window kind -> consecutive drifted windows
        self._perf_streak: dict[str, int] = {}  # model -> consecutive dropped windows

    # -- persistence -----------------------------------------------------------------------
    STATE_FORMAT = 1

    def state(self) -> dict[str, Any]:
        """What the policy remembers (cooldowns, baselines, the champion seen last, a pending
        rollback check, drift streaks), as JSON-able data; :meth:`restore` takes it back, so
        a restarted monitor neither repeats alerts still cooling down nor forgets baselines.

        >>> from riverwatch.monitors.windows import Window
        >>> win = Window("count", 0, 0.0, 600.0, [], [])
        >>> a = Policy(PolicyConfig(cooldown_s=3600))
        >>> _ = a.perf(win, "batch", {"ap": 0.8}, provisional=False, champion="batch-1")
        >>> len(a.perf(win, "batch", {"ap": 0.5}, provisional=False, champion="batch-1").controls)
        1
        >>> b = Policy(PolicyConfig(cooldown_s=3600))
        >>> b.restore(a.state())
        >>> b.state() == a.state()
        True
        >>> b.perf(win, "batch", {"ap": 0.5}, provisional=False, champion="batch-1").controls
        []
        """
        return {
            "format": self.STATE_FORMAT,
            "suppressed": self.suppressed,
            "last": [[kind, subject, t] for (kind, subject), t in self._last.items()],
            "history": {m: list(h) for m, h in self._history.items()},
            "champion": self._champion,
            "pending": list(self._pending) if self._pending is not None else None,
            "last_value": dict(self._last_value),
            "drift_streak": dict(self._drift_streak),
            "perf_streak": dict(self._perf_streak),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state` gave; a state of another format is ignored (the
        policy then starts afresh, as before there was persistence)."""
        if state.get("format") != self.STATE_FORMAT:
            return
        self.suppressed = int(state["suppressed"])
        self._last = {(k, s): float(t) for k, s, t in state["last"]}
        n = self.c.baseline_windows
        self._history = {m: deque(map(float, h), maxlen=n) for m, h in state["history"].items()}
        self._champion = state["champion"]
        pending = state["pending"]
        self._pending = (pending[0], pending[1], float(pending[2])) if pending else None
        self._last_value = {m: float(v) for m, v in state["last_value"].items()}
        self._drift_streak = {k: int(v) for k, v in state["drift_streak"].items()}
        self._perf_streak = {k: int(v) for k, v in state.get("perf_streak", {}).items()}

    # -- building blocks -------------------------------------------------------------------
    def _cool(self, kind: str, subject: str, t: float) -> bool:
        """True when (kind, subject) fired less than ``cooldown_s`` of event time ago."""
        last = self._last.get((kind, subject))
        if last is not None and abs(t - last) < self.c.cooldown_s:
            self.suppressed += 1
            return True
        self._last[(kind, subject)] = t
        return False

    def _alert(
        self, win: Window[Any], kind: str, sev: Severity, subject: str, msg: str, **details: Any
    ) -> Alert:
        meta = win.meta()
        return Alert(
            alert_id=f"{kind}:{subject}:{meta['window_kind']}:{meta['window_end']}",
            kind=kind,  # type: ignore[arg-type]
            severity=sev,
            subject=subject,
            message=msg,
            details={**meta, **details},
            timestamp=self.clock(),
        )

    def _act(
        self, win: Window[Any], action: Action, target: str, reason: str, trigger: dict[str, Any]
    ) -> Decision:
        """A control request with its ``retrain`` alert and audit entry (cooldown applied)."""
        if self._cool(f"action:{action}", target, win.window_end):
            return Decision()
        meta = win.meta()
        rid = f"monitor-{action}-{target}-{int(win.window_end)}"
        span = {k: meta[k] for k in ("window_start", "window_end")}
        details = {"trigger": trigger, **span, "source": "monitor"}
        ctl = Control(
            action=action,
            target=target,
            request_id=rid,
            reason=reason,
            details=details,
            timestamp=self.clock(),
        )
        alert = self._alert(
            win,
            "retrain",
            "warning",
            target,
            f"{action} of {target} requested: {reason}",
            action=action,
            request_id=rid,
            trigger=trigger,
        )
        entry = {
            "at": ctl.timestamp.isoformat(),
            "action": action,
            "target": target,
            "request_id": rid,
            "reason": reason,
            **details,
        }
        self.audit.append(entry)
        return Decision([alert], [ctl], [entry])

    # -- rules -----------------------------------------------------------------------------
    def drift(
        self,
        win: Window[Any],
        share: float | None,
        drifted: Iterable[str] = (),
        psi: float | None = None,
        psi_drifted: bool = False,
    ) -> Decision:
        """Data drift (``share`` of features drifted) and prediction drift: warnings only."""
        out = Decision()
        cols = sorted(drifted)
        over = share is not None and share >= self.c.drift_share_warn
        streak = self._drift_streak[win.kind] = (
            self._drift_streak.get(win.kind, 0) + 1 if over else 0
        )
        if (
            share is not None
            and streak >= self.c.drift_windows
            and not self._cool("drift", "features", win.window_end)
        ):
            sev: Severity = "critical" if share >= self.c.drift_share_critical else "warning"
            msg = f"{share:.0%} of features drifted: {', '.join(cols)}"
            if streak > 1:
                msg += f" ({streak} windows in a row)"
            out.alerts.append(
                self._alert(
                    win,
                    "drift",
                    sev,
                    "features",
                    msg,
                    share_drifted=share,
                    drifted=cols,
                    windows_in_a_row=streak,
                )
            )
        if psi_drifted and not self._cool("drift", "score", win.window_end):
            msg = f"score distribution drifted (PSI {psi:.3f})"
            out.alerts.append(self._alert(win, "drift", "warning", "score", msg, psi=psi))
        return out

    def features(self, win: Window[Any], found: FeatureDrift) -> Decision:
        """Per-feature drift (:mod:`monitors.columns`): a ``drift`` alert when an important
        feature, or ``drift_share_warn`` of the features by weight, drifts ``drift_windows``
        windows in a row; it names the features, the statistic and the strongest segment."""
        key = f"features:{win.kind}"
        over = bool(found.important) or found.weighted_share >= self.c.drift_share_warn
        streak = self._drift_streak[key] = self._drift_streak.get(key, 0) + 1 if over else 0
        if streak < self.c.drift_windows or self._cool("drift", "features", win.window_end):
            return Decision()
        best = found.strongest or {}
        where = best.get("segment", "*")
        msg = (
            f"features drifted ({found.weighted_share:.0%} by importance): "
            f"{', '.join(found.drifted)}; strongest {best.get('column')} in "
            f"{'all events' if where == '*' else where} (PSI {best.get('psi', math.nan):.2f}, "
            f"Wasserstein {best.get('wasserstein', math.nan):.2f} std)"
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

    def prediction(self, win: Window[Any], pred: ScoreDrift) -> Decision:
        """Prediction drift: the score distribution (PSI) or the flagged share moved."""
        out = Decision()
        if pred.drifted and not self._cool("drift", "score", win.window_end):
            msg = f"score distribution drifted (PSI {pred.psi:.3f})"
            out.alerts.append(self._alert(win, "drift", "warning", "score", msg, psi=pred.psi))
        if pred.flagged_drifted and not self._cool("drift", "flagged", win.window_end):
            msg = (
                f"flagged share rose to {pred.flagged:.2%} from {pred.flagged_reference:.2%} "
                f"({pred.flagged_z:.1f} standard deviations)"
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
                )
            )
        return out

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

    def concept(self, win: Window[Any], events: Iterable[DriftEvent]) -> Decision:
        """Concept drift on error streams: retrain (batch/combined) or reset (online)."""
        out = Decision()
        for ev in events:
            if ev.direction != "up":
                continue  # a model getting better is not an incident
            subject = ev.model if ev.group == ALL else f"{ev.model}/{ev.group}"
            trig = {"finding": "concept_drift", **ev.to_dict()}
            msg = (
                f"error rate of {ev.model} on {ev.group} rose from {ev.before:.3f} "
                f"to {ev.after:.3f} ({ev.detector})"
            )
            if not self._cool("performance", subject, win.window_end):
                sev: Severity = "warning" if ev.group == ALL else "info"
                out.alerts.append(self._alert(win, "performance", sev, subject, msg, **trig))
            if ev.group != ALL:
                continue  # one group's detector alone does not retrain the whole model
            if ev.model in self.c.retrain_models:
                out.extend(self._act(win, "retrain", self.c.batch_model, msg, trig))
            elif ev.model in self.c.reset_models:
                out.extend(self._act(win, "reset", ev.model, msg, trig))
        return out

    def perf(
        self,
        win: Window[Any],
        model: str,
        metrics: Mapping[str, Any],
        *,
        provisional: bool,
        champion: str | None = None,
    ) -> Decision:
        """A performance report of ``model``: drop -> retrain; bad new champion -> rollback.

        Provisional windows (labels not matured) are ignored. ``champion`` is the registry's
        champion when the report is about the batch model.
        """
        value = _num(metrics.get(self.c.perf_metric))
        if provisional or value is None:
            return Decision()
        out = Decision()
        m = self.c.perf_metric
        upper = _num(metrics.get(f"{m}_upper"))

        def below(limit: float) -> bool:
            """The window's metric is below ``limit``, beyond sampling noise when known."""
            assert value is not None
            return value < limit and (upper is None or upper < limit)

        if model == self.c.batch_model and champion != self._champion:
            if self._champion is not None and champion is not None and model in self._last_value:
                self._pending = (champion, self._champion, self._last_value[model])
            self._champion = champion
            self._history.pop(model, None)  # a new model earns a new baseline
        hist = self._history.setdefault(model, deque(maxlen=self.c.baseline_windows))
        pending = self._pending if model == self.c.batch_model else None
        if pending is not None and pending[0] == champion:
            self._pending = None
            new, old, old_value = pending
            if below(old_value - self.c.rollback_margin):
                trig = {
                    "finding": "worse_than_predecessor",
                    "metric": m,
                    "value": value,
                    "predecessor": old,
                    "predecessor_value": old_value,
                    "upper_bound": upper,
                }
                msg = f"{new} {m} {value:.3f}{_bound(upper)} < predecessor {old} {old_value:.3f}"
                out.alerts.append(self._alert(win, "performance", "critical", model, msg, **trig))
                out.extend(self._act(win, "rollback", new, msg, trig))
                return out
        self._last_value[model] = value
        if len(hist) and below((base := sum(hist) / len(hist)) - self.c.perf_drop):
            streak = self._perf_streak[model] = self._perf_streak.get(model, 0) + 1
            if streak < self.c.perf_windows:
                return out  # not yet persistent; nor does it lower the baseline
            trig = {"finding": "performance_drop", "metric": m, "value": value, "baseline": base}
            trig["windows_in_a_row"] = streak
            trig["upper_bound"] = upper
            msg = f"{model} {m} fell to {value:.3f}{_bound(upper)} from a baseline of {base:.3f}"
            if not self._cool("performance", model, win.window_end):
                sev: Severity = "critical" if value < base - 2 * self.c.perf_drop else "warning"
                out.alerts.append(self._alert(win, "performance", sev, model, msg, **trig))
            if model in self.c.retrain_models:
                out.extend(self._act(win, "retrain", self.c.batch_model, msg, trig))
            return out  # a dropped window does not lower the baseline
        self._perf_streak[model] = 0
        hist.append(value)
        return out

    def fairness(self, win: Window[Any], reports: Mapping[str, AttributeFairness]) -> Decision:
        """One ``fairness`` alert per attribute with a gap whose bootstrap interval clears its
        threshold (:mod:`monitors.fairness_rules`: parity and equalized-odds ratios and
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
