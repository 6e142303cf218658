"""Contracts of the records riverwatch writes itself: scores, forecasts, alerts, control
requests and their outcomes, dead letters (see docs/architecture.md, "Topics and contracts").

Unlike the inputs of :mod:`riverwatch.core.events`, these come from riverwatch's own code, so
they are not bounded field by field; they serialize with :func:`riverwatch.core.events.dumps`.
One exception: a control request's ``request_id`` and ``target`` are echoed in its outcome and
its alert (streams/control.py), so they are bounded as ids are (:data:`ID_MAX_CHARS`): a
request written straight to ``control`` with a longer one is dead-lettered, not left
unanswerable because its outcome would exceed the broker's record size.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from riverwatch.core.limits import ID_MAX_CHARS


class Reason(BaseModel):
    """One feature's contribution to a score."""

    feature: str
    value: float
    contribution: float


class Score(BaseModel):
    """The scorer's verdict on a transaction. Key: ``card_id``."""

    event_id: str
    card_id: str
    timestamp: datetime
    score: float
    online_score: float
    batch_score: float | None = None
    shadow_score: float | None = Field(None, description="The challenger's score (not used).")
    decision: Literal["approve", "review", "decline"]
    model_versions: dict[str, str]
    reasons: list[Reason] = Field(default_factory=list)
    latency_ms: float
    scored_at: datetime


class ForecastPoint(BaseModel):
    """One horizon step of a forecast with its interval."""

    timestamp: datetime
    value: float
    lower: float
    upper: float


class Forecast(BaseModel):
    """A horizon forecast for a series. Key: ``series_id``."""

    series_id: str
    timestamp: datetime
    model: str
    points: list[ForecastPoint]
    anomaly: bool = False


class AlertKind(StrEnum):
    """The alert kinds, defined once (subscriptions, filters and the cooldown setting read
    them too). A StrEnum: a kind is its name in JSON, in an environment variable and in a
    metric's label alike."""

    FRAUD = "fraud"
    DRIFT = "drift"
    FAIRNESS = "fairness"
    PERFORMANCE = "performance"
    QUALITY = "quality"
    FORECAST_ANOMALY = "forecast_anomaly"
    RETRAIN = "retrain"
    SYSTEM = "system"

    def __repr__(self) -> str:  # shown as the plain string it was before the enum ('drift')
        return repr(self.value)


Severity = Literal["info", "warning", "critical"]
ALERT_KINDS: tuple[str, ...] = tuple(k.value for k in AlertKind)
SEVERITIES: tuple[str, ...] = get_args(Severity)


class Alert(BaseModel):
    """Something a subscriber should hear about. Key: ``kind``."""

    alert_id: str
    kind: AlertKind
    severity: Severity
    subject: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime


class Control(BaseModel):
    """A request to the trainers (retrain, promote, reset) or its outcome."""

    action: Literal["retrain", "promote", "reset", "rollback"]
    target: str = Field(max_length=ID_MAX_CHARS)
    request_id: str = Field(max_length=ID_MAX_CHARS)
    status: Literal["requested", "done", "failed"] = "requested"
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime


class DeadLetter(BaseModel):
    """A record a worker could not process, with where it came from and why."""

    origin_topic: str
    partition: int
    offset: int
    key: str | None
    value: str = Field(
        description="The raw bytes, decoded as UTF-8 with replacement; at most the first "
        "64 KiB of them (see truncated)."
    )
    value_bytes: int | None = Field(None, description="The record's value size in bytes.")
    truncated: bool = Field(
        False, description="Key or value longer than 64 KiB: read it whole at its origin."
    )
    error: str
    worker: str
    timestamp: datetime
