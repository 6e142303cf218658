"""What the monitoring policy remembers, and the building blocks its rules share.

State: cooldowns, performance baselines, the champion seen last, a pending rollback check and
the drift streaks, persisted as JSON-able data (:meth:`PolicyState.state`). Building blocks:
the cooldown per (kind, subject) on event time, an alert about a window, and a control request
with its ``retrain`` alert and audit entry. The rules are in :mod:`monitors.policy.alert_rules`
and :mod:`monitors.policy.action_rules`; :class:`monitors.policy.Policy` has them all.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from riverwatch.core.outputs import Alert, Control
from riverwatch.monitors.policy.config import PolicyConfig
from riverwatch.monitors.policy.decision import Action, Decision, Severity
from riverwatch.monitors.windows import Window


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _bound(upper: float | None) -> str:
    return "" if upper is None else f" (upper bound {upper:.3f})"


class PolicyState:
    """The policy's memory and building blocks (see the module docstring)."""

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
        # rule and window kind ("features:time", "score:count", "flagged:time", "labels")
        # -> consecutive windows over its threshold (AlertRules._streak)
        self._drift_streak: dict[str, int] = {}
        self._perf_streak: dict[str, int] = {}  # model -> consecutive dropped windows
        self._followup: float | None = None  # event time of a due follow-up retrain

    # -- persistence -----------------------------------------------------------------------
    STATE_FORMAT = 1

    def state(self) -> dict[str, Any]:
        """What the policy remembers (cooldowns, baselines, the champion seen last, a pending
        rollback check, drift streaks), as JSON-able data; :meth:`restore` takes it back, so
        a restarted monitor neither repeats alerts still cooling down nor forgets baselines.

        >>> from riverwatch.monitors.policy import Policy
        >>> from riverwatch.monitors.policy.config import PolicyConfig
        >>> from riverwatch.monitors.windows import Window
        >>> win = Window("count", 0, 0.0, 600.0, [], [])
        >>> a = Policy(PolicyConfig(cooldown_s=3600, perf_windows=1))
        >>> _ = a.perf(win, "batch", {"ap": 0.8}, provisional=False, champion="batch-1")
        >>> len(a.perf(win, "batch", {"ap": 0.5}, provisional=False, champion="batch-1").controls)
        1
        >>> b = Policy(PolicyConfig(cooldown_s=3600, perf_windows=1))
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
            "followup": self._followup,
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
        followup = state.get("followup")
        self._followup = None if followup is None else float(followup)

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
