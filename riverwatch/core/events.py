"""Event contracts of the input topics (see docs/architecture.md, "Topics and contracts"); the
records riverwatch writes itself (scores, forecasts, alerts, control) are in
:mod:`riverwatch.core.outputs`.

Inputs (transactions, labels, metric points) forbid unknown fields, so a typo such as
``ammount`` is reported instead of silently dropped; producer-specific features go in
``attributes``. Timestamps accept ISO 8601 or epoch seconds; naive ones are taken as UTC.
Every field is bounded (core.limits): finite amounts and values up to a limit, a calendar
window for timestamps, printable ASCII ids, few and short ``groups``/``attributes``; the
API and the workers validate with the same models and the same limits.

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

from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from riverwatch.core.errors import InvalidEvent
from riverwatch.core.limits import (
    DEFAULT_LIMITS,
    ID_MAX_CHARS,
    ID_PATTERN,
    TEXT_MAX_CHARS,
    TEXT_PATTERN,
    EventLimits,
    check_amount,
    check_value,
    event_time,
    not_boolean,
    pattern_reason,
    show,
)
from riverwatch.core.maps import check_map

_D = DEFAULT_LIMITS
MAX_RECORD_ERRORS = 10  # errors reported per record (a record can hold many bad fields)
_FIELD_CHARS = 100  # longest field path in an error (an unknown field's name is user text)

Timestamp = Annotated[
    datetime,
    WrapValidator(event_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "description": "epoch seconds (milliseconds from 1e11)"},
            ],
            "description": "ISO 8601 (naive is UTC) or epoch seconds; between "
            "RIVERWATCH_MIN_EVENT_TIME and RIVERWATCH_MAX_EVENT_TIME, and at most "
            "RIVERWATCH_MAX_FUTURE_SKEW_S ahead of the clock.",
        }
    ),
]
# the patterns run in pydantic-core; validation_errors turns a mismatch into a plain reason
Ident = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
Text = Annotated[str, Field(max_length=TEXT_MAX_CHARS, pattern=TEXT_PATTERN)]
Amount = Annotated[
    float,
    Strict(),
    Field(ge=0),
    AfterValidator(check_amount),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": _D.max_amount}),
]
Value = Annotated[
    float,
    Strict(),
    AfterValidator(check_value),
    WithJsonSchema({"type": "number", "minimum": -_D.max_abs_value, "maximum": _D.max_abs_value}),
]
AttributeValue = bool | int | float | str
_KEYS = {"maxLength": _D.max_key_chars, "pattern": ID_PATTERN}
_STR = {"type": "string", "maxLength": _D.max_value_chars}
_NUM = {"type": "number", "minimum": -_D.max_abs_value, "maximum": _D.max_abs_value}
Attributes = Annotated[
    dict[str, AttributeValue],
    BeforeValidator(check_map),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": _D.max_map_keys,
            "propertyNames": _KEYS,
            "additionalProperties": {"anyOf": [{"type": "boolean"}, _NUM, _STR]},
        }
    ),
]
Groups = Annotated[
    dict[str, str],
    BeforeValidator(check_map),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": _D.max_map_keys,
            "propertyNames": _KEYS,
            "additionalProperties": _STR,
        }
    ),
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _few_fields(cls, data: Any) -> Any:
        # one error per unknown field would let a record of 100k keys answer 100k errors
        # __pydantic_fields__: the same dict as model_fields without its ~1 us property
        if isinstance(data, dict) and len(data) > 2 * len(cls.__pydantic_fields__):
            raise PydanticCustomError(
                "too_many_fields",
                "has {count} fields; a {model} has {fields} fields",
                {"count": len(data), "model": cls.__name__, "fields": len(cls.model_fields)},
            )
        return data

    @cached_property
    def epoch(self) -> float:
        """Event time as seconds since the Unix epoch (computed once: the hot path asks ~5
        times per event; the model is frozen, so it cannot go stale)."""
        return self.timestamp.timestamp()  # type: ignore[attr-defined,no-any-return]


class Transaction(_Input):
    """A card payment to score. Key on the ``transactions`` topic: ``card_id``."""

    event_id: Ident = Field(description="Unique id; the idempotency key of the whole pipeline.")
    timestamp: Timestamp
    card_id: Ident
    terminal_id: Ident
    amount: Amount = Field(description="At most RIVERWATCH_MAX_AMOUNT.")
    customer_id: Ident | None = None
    channel: Text | None = None
    merchant_category: Text | None = None
    attributes: Attributes = Field(
        default_factory=dict, description="Extra features sent by the producer."
    )
    groups: Groups = Field(
        default_factory=dict, description="Protected attributes for fairness, e.g. age_band."
    )


class Label(_Input):
    """The ground truth for a transaction, usually days later. Key: ``event_id``."""

    event_id: Ident
    label: Annotated[Literal[0, 1], BeforeValidator(not_boolean)]
    timestamp: Timestamp
    source: Text | None = None


class MetricPoint(_Input):
    """One point of a metric series. Key: ``series_id``."""

    series_id: Ident
    timestamp: Timestamp
    value: Value = Field(description="At most RIVERWATCH_MAX_ABS_VALUE in magnitude.")


E = TypeVar("E", bound=BaseModel)


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Turn pydantic's errors into ``[{"field": "a.b", "reason": "..."}]`` a user can act on.

    At most MAX_RECORD_ERRORS, the last one counting the rest; long field names are cut.
    """
    out = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_RECORD_ERRORS]:
        field = ".".join(str(p) for p in err["loc"]) or "(record)"
        if len(field) > _FIELD_CHARS:
            field = show(field, _FIELD_CHARS)
        reason = err["msg"]
        if err["type"] == "string_pattern_mismatch":
            reason = pattern_reason(err["ctx"]["pattern"], err["input"]) or reason
        out.append({"field": field, "reason": reason})
    if len(errors) > MAX_RECORD_ERRORS:
        more = len(errors) - MAX_RECORD_ERRORS
        out.append({"field": "(record)", "reason": f"and {more} more errors"})
    return out


def parse_event(
    model: type[E],
    raw: bytes | str | dict[str, Any],
    limits: EventLimits | None = None,
    now: float | None = None,
) -> E:
    """Validate one record (JSON bytes/str or a dict) against ``model``; raise InvalidEvent.

    ``limits`` (from the settings) bound the input contracts; the defaults apply without.
    ``now``, the wall clock in epoch seconds, refuses an event time more than
    ``limits.max_future_skew_s`` ahead of it; without it (a record riverwatch stored itself)
    only the calendar window applies.
    """
    context = {"limits": limits or DEFAULT_LIMITS, "now": now}
    try:
        if isinstance(raw, dict):
            return model.model_validate(raw, context=context)
        return model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        errors = validation_errors(exc)
        if errors and errors[0]["reason"].startswith("Invalid JSON"):
            errors = [{"field": "(record)", "reason": errors[0]["reason"]}]
        kinds = [
            (str(e["loc"][0])[:_FIELD_CHARS] if e["loc"] else "(record)", e["type"])
            for e in exc.errors(include_url=False)[:MAX_RECORD_ERRORS]
        ]
        raise InvalidEvent(errors, kinds) from exc


def dumps(event: BaseModel) -> bytes:
    """Serialize an event to compact JSON bytes (the wire format of every topic)."""
    return orjson.dumps(event.model_dump(mode="json"))


def now_utc() -> datetime:
    """The wall clock as an aware UTC datetime."""
    return datetime.now(UTC)
