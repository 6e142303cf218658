"""What the monitoring policy decides: alerts, control requests and their audit entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from riverwatch.core.outputs import Alert, Control

Severity = Literal["info", "warning", "critical"]
Action = Literal["retrain", "reset", "rollback"]


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
