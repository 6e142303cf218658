"""Event contracts of every topic (see ARCHITECTURE.md, "Topics and contracts").

Inputs (transactions, labels, metric points) forbid unknown fields, so a typo such as
``ammount`` is reported instead of silently dropped; producer-specific features go in
``attributes``. Timestamps accept ISO 8601 or epoch seconds; naive ones are taken as UTC.

>>> tx = parse_event(Transaction, b'{"event_id": "e1", "timestamp": 0, "card_id": "c1",'
...                  b' "terminal_id": "t1", "amount": 12.5}')
>>> tx.amount, tx.epoch
(12.5, 0.0)
>>> try:
...     parse_event(Label, {"event_id": "e1", "label": 3, "timestamp": 0})
... except InvalidEvent as exc:
...     exc.errors[0]["field"]
'label'
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from core.errors import InvalidEvent


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Timestamp = Annotated[datetime, AfterValidator(_utc)]
FiniteFloat = Annotated[float, AfterValidator(_finite)]
Ident = Annotated[str, Field(min_length=1, max_length=128)]
AttributeValue = bool | int | float | str


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def epoch(self) -> float:
        """Event time as seconds since the Unix epoch."""
        return self.timestamp.timestamp()  # type: ignore[attr-defined,no-any-return]


class Transaction(_Input):
    """A card payment to score. Key on the ``transactions`` topic: ``card_id``."""

    event_id: Ident = Field(description="Unique id; the idempotency key of the whole pipeline.")
    timestamp: Timestamp
    card_id: Ident
    terminal_id: Ident
    amount: FiniteFloat = Field(ge=0)
    customer_id: Ident | None = None
    channel: str | None = Field(None, max_length=64)
    merchant_category: str | None = Field(None, max_length=64)
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="Extra features sent by the producer."
    )
    groups: dict[str, str] = Field(
        default_factory=dict, description="Protected attributes for fairness, e.g. age_band."
    )


class Label(_Input):
    """The ground truth for a transaction, usually days later. Key: ``event_id``."""

    event_id: Ident
    label: Literal[0, 1]
    timestamp: Timestamp
    source: str | None = Field(None, max_length=64)


class MetricPoint(_Input):
    """One point of a metric series. Key: ``series_id``."""

    series_id: Ident
    timestamp: Timestamp
    value: FiniteFloat


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


class Alert(BaseModel):
    """Something a subscriber should hear about. Key: ``kind``."""

    alert_id: str
    kind: Literal[
        "fraud", "drift", "fairness", "performance", "forecast_anomaly", "retrain", "system"
    ]
    severity: Literal["info", "warning", "critical"]
    subject: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime


class Control(BaseModel):
    """A request to the trainers (retrain, promote, reset) or its outcome."""

    action: Literal["retrain", "promote", "reset", "rollback"]
    target: str
    request_id: str
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
    value: str = Field(description="The raw bytes, decoded as UTF-8 with replacement.")
    error: str
    worker: str
    timestamp: datetime


E = TypeVar("E", bound=BaseModel)


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Turn pydantic's errors into ``[{"field": "a.b", "reason": "..."}]`` a user can act on."""
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "(record)"
        out.append({"field": field, "reason": err["msg"]})
    return out


def parse_event(model: type[E], raw: bytes | str | dict[str, Any]) -> E:
    """Validate one record (JSON bytes/str or a dict) against ``model``; raise InvalidEvent."""
    try:
        if isinstance(raw, dict):
            return model.model_validate(raw)
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = validation_errors(exc)
        if errors and errors[0]["reason"].startswith("Invalid JSON"):
            errors = [{"field": "(record)", "reason": errors[0]["reason"]}]
        raise InvalidEvent(errors) from exc


def dumps(event: BaseModel) -> bytes:
    """Serialize an event to compact JSON bytes (the wire format of every topic)."""
    return orjson.dumps(event.model_dump(mode="json"))


def now_utc() -> datetime:
    """The wall clock as an aware UTC datetime."""
    return datetime.now(UTC)
