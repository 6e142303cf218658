"""Contracts of the records riverwatch writes itself: scores, forecasts, alerts, control
requests and their outcomes, dead letters (see docs/architecture.md, "Topics and contracts").

They come from riverwatch's own code and serialize with :func:`riverwatch.core.events.dumps`,
but a producer can write straight to ``scores``, ``alerts`` and ``control``, so what the
monitor, the dispatcher and the trainers read is bounded too (a record out of bounds is
dead-lettered with ``field: reason``): finite numbers (JSON has no NaN: riverwatch never writes
one), probabilities in [0, 1], ids and short texts without control characters, bounded
messages, maps and lists, timestamps in the calendar window (core.limits; the clock too where
the reader passes it, as the monitor does for scores). Unknown fields are still ignored: a
newer writer's field must not dead-letter a rolling upgrade's records. A control request's
``request_id`` and ``target`` are echoed in its outcome and its alert (streams/control.py), so
they are bounded as ids are (:data:`ID_MAX_CHARS`): a longer one would make its outcome exceed
the broker's record size.

Models built in code (``Score(...)``) and FastAPI's response check get no validation context:
their timestamps are read as plain datetimes, the window applies only through ``parse_event``.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    Strict,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from riverwatch.core.limits import ID_MAX_CHARS, ID_PATTERN, TEXT_PATTERN, event_time, show

MESSAGE_MAX_CHARS = 16_384  # an alert's message, an outcome's reason (exception texts)
NAME_MAX_CHARS = 1024  # an alert's id and subject (built from a group value, up to 256)
DETAILS_MAX_DEPTH = 16
INT_BOUND = 2**63  # what the stores (orjson, Redis) take


def stored_time(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """A timestamp: in the calendar window (and the clock's bound) of the validation context
    when there is one (``parse_event`` always passes one); a plain datetime without."""
    return event_time(value, handler, info) if info.context else handler(value)


def _probability(value: float) -> float:
    # 1e-9 of slack: w * a + (1 - w) * b of two probabilities can round one ulp past 1
    if not -1e-9 <= value <= 1 + 1e-9:
        raise PydanticCustomError("out_of_range", "must be a probability between 0 and 1")
    return value


def _walk(value: Any, path: str, depth: int) -> None:
    where = {"path": path or "(details)"}
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "{path} must be a finite number", where)
    if isinstance(value, int) and not -INT_BOUND <= value < INT_BOUND:
        raise PydanticCustomError("out_of_range", "{path} must be an integer within 64 bits", where)
    if isinstance(value, dict | list):
        if depth >= DETAILS_MAX_DEPTH:
            raise PydanticCustomError(
                "bounds", "{path} nests more than {limit} levels", {**where, "limit": depth}
            )
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in pairs:
            name = show(key) if isinstance(key, str) else str(key)
            _walk(item, f"{path}.{name}" if path else name, depth + 1)


def check_details(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """``details`` read from a topic: finite numbers, 64-bit integers, at most
    DETAILS_MAX_DEPTH levels. Not checked without a validation context: the monitor's code
    puts a NaN statistic in an alert's details, which JSON writes as null."""
    if info.context:
        _walk(value, "", 0)
    return value


StoredTime = Annotated[datetime, WrapValidator(stored_time)]
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Probability = Annotated[float, Strict(), Field(allow_inf_nan=False), AfterValidator(_probability)]
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
Name = Annotated[str, Field(max_length=NAME_MAX_CHARS, pattern=TEXT_PATTERN)]
Message = Annotated[str, Field(max_length=MESSAGE_MAX_CHARS)]
Details = Annotated[dict[str, Any], AfterValidator(check_details)]
Short = Annotated[str, Field(max_length=ID_MAX_CHARS, pattern=TEXT_PATTERN)]


class Reason(BaseModel):
    """One feature's contribution to a score."""

    feature: Short
    value: Finite
    contribution: Finite


class Score(BaseModel):
    """The scorer's verdict on a transaction. Key: ``card_id``."""

    event_id: Id
    card_id: Id
    timestamp: StoredTime
    score: Probability
    online_score: Probability
    batch_score: Probability | None = None
    shadow_score: Probability | None = Field(None, description="The challenger's score (not used).")
    decision: Literal["approve", "review", "decline"]
    model_versions: dict[Short, Short] = Field(max_length=16)
    reasons: list[Reason] = Field(default_factory=list, max_length=64)
    latency_ms: Annotated[Finite, Field(ge=0)]
    scored_at: StoredTime


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

    alert_id: Annotated[Name, Field(min_length=1)]
    kind: AlertKind
    severity: Severity
    subject: Name
    message: Message
    details: Details = Field(default_factory=dict)
    timestamp: StoredTime


class Control(BaseModel):
    """A request to the trainers (retrain, promote, reset) or its outcome."""

    action: Literal["retrain", "promote", "reset", "rollback"]
    target: str = Field(max_length=ID_MAX_CHARS)
    request_id: str = Field(max_length=ID_MAX_CHARS)
    status: Literal["requested", "done", "failed"] = "requested"
    reason: Message = ""
    details: Details = Field(default_factory=dict)
    timestamp: StoredTime


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
