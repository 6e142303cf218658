"""The policy's rules that act: concept drift and performance drops of the labeled windows
request a retrain or a reset, a new champion worse than its predecessor a rollback."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from riverwatch.monitors.concept.detectors import ALL, DriftEvent
from riverwatch.monitors.policy.decision import Decision, Severity
from riverwatch.monitors.policy.state import PolicyState, _bound, _num
from riverwatch.monitors.windows import Window


def _below(value: float, upper: float | None, limit: float) -> bool:
    """The window's metric ``value`` is below ``limit``, beyond sampling noise when its upper
    bound ``upper`` is known."""
    return value < limit and (upper is None or upper < limit)


class ActionRules(PolicyState):
    """Rules over labeled findings that may request a retrain, a reset or a rollback."""

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
                acted = self._act(win, "retrain", self.c.batch_model, msg, trig)
                if acted.controls and self.c.followup_s > 0:
                    self._followup = win.window_end + self.c.followup_s
                out.extend(acted)
            elif ev.model in self.c.reset_models:
                out.extend(self._act(win, "reset", ev.model, msg, trig))
        return out

    def followup(self, win: Window[Any]) -> Decision:
        """The follow-up retrain of a concept-drift retrain, once its time has come (see
        ``PolicyConfig.followup_s``): labels up to ``win.window_end`` have been seen.

        >>> from riverwatch.monitors.policy import Policy
        >>> from riverwatch.monitors.policy.config import PolicyConfig
        >>> p = Policy(PolicyConfig(followup_s=3 * 86_400.0))
        >>> p._followup = 86_400.0  # as a concept-drift retrain on day 0 would set it
        >>> p.followup(Window("count", -1, 0.0, 80_000.0, [], [])).controls
        []
        >>> [c.reason for c in p.followup(Window("count", -1, 0.0, 90_000.0, [], [])).controls]
        ['follow-up of a concept-drift retrain: the labels since the change have matured']
        >>> p.followup(Window("count", -1, 0.0, 99_000.0, [], [])).controls  # once only
        []
        """
        due = self._followup
        if due is None or win.window_end < due:
            return Decision()
        self._followup = None
        reason = "follow-up of a concept-drift retrain: the labels since the change have matured"
        trigger = {"finding": "concept_followup", "due": due}
        return self._act(win, "retrain", self.c.batch_model, reason, trigger)

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
        upper = _num(metrics.get(f"{self.c.perf_metric}_upper"))
        self._follow_champion(model, champion)
        hist = self._history.setdefault(model, deque(maxlen=self.c.baseline_windows))
        pending = self._pending if model == self.c.batch_model else None
        if pending is not None and pending[0] == champion:
            self._pending = None
            rollback = self._rollback(win, model, pending, value, upper)
            if rollback is not None:
                return rollback
        self._last_value[model] = value
        if len(hist) and _below(value, upper, (base := sum(hist) / len(hist)) - self.c.perf_drop):
            return self._drop(win, model, value, upper, base)
        self._perf_streak[model] = 0
        hist.append(value)
        return Decision()

    def _follow_champion(self, model: str, champion: str | None) -> None:
        """A new champion of the batch model: its predecessor's last value awaits the new
        one's first matured window (a rollback check), and it earns a new baseline."""
        if model == self.c.batch_model and champion != self._champion:
            if self._champion is not None and champion is not None and model in self._last_value:
                self._pending = (champion, self._champion, self._last_value[model])
            self._champion = champion
            self._history.pop(model, None)  # a new model earns a new baseline

    def _rollback(
        self,
        win: Window[Any],
        model: str,
        pending: tuple[str, str, float],
        value: float,
        upper: float | None,
    ) -> Decision | None:
        """The new champion's first matured window against its predecessor's last value: a
        ``rollback`` request when it is worse by ``rollback_margin``, else None."""
        new, old, old_value = pending
        if not _below(value, upper, old_value - self.c.rollback_margin):
            return None
        m = self.c.perf_metric
        out = Decision()
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

    def _drop(
        self, win: Window[Any], model: str, value: float, upper: float | None, base: float
    ) -> Decision:
        """A window below the baseline by ``perf_drop``: a ``performance`` alert and a retrain
        request once ``perf_windows`` such windows came in a row (a dropped window does not
        lower the baseline, nor does one not yet persistent)."""
        out = Decision()
        m = self.c.perf_metric
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
        return out
