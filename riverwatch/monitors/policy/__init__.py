"""The monitoring policy: findings about a window -> alerts, control requests, an audit trail.

Pure: findings of :mod:`monitors.drift`, ``concept``, ``fairness`` and ``performance`` in,
:class:`monitors.policy.decision.Decision` s (``core.events.Alert``/``Control`` plus audit
entries) out.
State: cooldowns, performance baselines and the champion seen last.

Rules (thresholds in :class:`monitors.policy.config.PolicyConfig`; those that only alert in
:mod:`monitors.policy.alert_rules`, those that act in :mod:`monitors.policy.action_rules`):

* data drift (an important feature, or a share of the features by importance, over
  ``drift_windows`` windows in a row) or prediction drift alone: a ``drift`` alert;
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

>>> from datetime import UTC, datetime
>>> from riverwatch.monitors.policy.config import PolicyConfig
>>> from riverwatch.monitors.windows import Window
>>> pol = Policy(PolicyConfig(cooldown_s=3600), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
>>> win = Window("count", 0, 0.0, 600.0, [], [])
>>> d = pol.perf(win, "batch", {"ap": 0.8}, provisional=False, champion="batch-1")
>>> d.alerts, d.controls
([], [])
>>> d = pol.perf(win, "batch", {"ap": 0.5}, provisional=False, champion="batch-1")
>>> d.alerts, d.controls  # one window below the limit: chance, so far (perf_windows: 2)
([], [])
>>> d = pol.perf(win, "batch", {"ap": 0.5}, provisional=False, champion="batch-1")
>>> [a.kind for a in d.alerts], [c.action for c in d.controls]
(['performance', 'retrain'], ['retrain'])
>>> d.alerts[0].details["window_end"]
'1970-01-01T00:10:00+00:00'
"""

from __future__ import annotations

from riverwatch.monitors.policy.action_rules import ActionRules
from riverwatch.monitors.policy.alert_rules import AlertRules


class Policy(AlertRules, ActionRules):
    """Stateful rules over findings; see the module docstring (its state and persistence:
    :class:`monitors.policy.state.PolicyState`)."""
