"""The bounds of the input contracts (core.events): what a transaction, label or metric point
may hold, and the validators that enforce them.

The numbers come from settings (``RIVERWATCH_MAX_AMOUNT`` ...; the composition root builds
them: ``Context.limits``) through pydantic's validation context:
``parse_event(model, raw, ctx.limits)``; a record validated without one (``Transaction(...)``
in code) gets :data:`DEFAULT_LIMITS`, which are also the settings' defaults.

Epoch numbers are seconds below 1e11 and milliseconds from 1e11 on (1e11 seconds is the year
5138, 1e11 milliseconds is 1973-03-03); either way the time must fall in the window, and be
at most ``max_future_skew_s`` ahead of the wall clock when the caller passes it
(``parse_event(..., now=time.time())``: validation itself never reads the clock).

>>> check_id("card-1")
'card-1'
>>> check_id("caf\\u00e9")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.PydanticCustomError: must be printable ASCII without control \
characters; found U+00E9 at position 3
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationInfo, ValidatorFunctionWrapHandler
from pydantic_core import PydanticCustomError

MS_FROM = 1e11  # epoch numbers from here on are milliseconds
ID_MAX_CHARS = 128
TEXT_MAX_CHARS = 64
ID_PATTERN = r"^[!-~]([ -~]*[!-~])?$"  # printable ASCII, no space at either end
_ID = re.compile(ID_PATTERN)
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
TEXT_PATTERN = f"^[^{_CONTROLS}]*$"  # free text: anything but control characters
_CONTROL = re.compile(f"[{_CONTROLS}]")


@dataclass(frozen=True, slots=True)
class EventLimits:
    """The configurable bounds of an input record (see the settings of the same names)."""

    max_amount: float
    max_abs_value: float
    min_epoch: float
    max_epoch: float
    max_map_keys: int
    max_key_chars: int
    max_value_chars: int
    max_future_skew_s: float = 86_400.0  # 0: no bound relative to the clock


def aware(value: datetime) -> datetime:
    """``value`` in UTC when it carries no zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# The defaults of the settings of the same names (core/settings/api.py takes them from here).
DEFAULT_LIMITS = EventLimits(
    max_amount=1e9,
    max_abs_value=1e15,
    min_epoch=datetime(1970, 1, 1, tzinfo=UTC).timestamp(),
    max_epoch=datetime(2100, 1, 1, tzinfo=UTC).timestamp(),
    max_map_keys=16,
    max_key_chars=64,
    max_value_chars=256,
)


def limits_of(info: ValidationInfo) -> EventLimits:
    """The limits passed in the validation context (parse_event always passes them), or the
    defaults."""
    ctx = info.context
    return ctx["limits"] if ctx else DEFAULT_LIMITS  # type: ignore[no-any-return]


def now_of(info: ValidationInfo) -> float | None:
    """The wall clock (epoch seconds) passed in the validation context, or None (no bound
    relative to it)."""
    ctx = info.context
    return ctx.get("now") if ctx else None


def _error(message: str, kind: str = "bounds", **values: Any) -> PydanticCustomError:
    # the type: "out_of_range" for a number or time beyond a limit, "bounds" otherwise (the
    # monitor's data-quality counters tell the two apart, core.rejects)
    return PydanticCustomError(kind, message, values)


def show(text: str, chars: int = 32) -> str:
    """A short, printable rendering of user text for an error message."""
    return ascii(text[:chars]) + ("..." if len(text) > chars else "")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def check_id(value: str) -> str:
    """An id must be printable ASCII (it ends up in keys, headers and metric labels)."""
    if _ID.fullmatch(value):
        return value
    for position, char in enumerate(value):
        if not " " <= char <= "~":
            raise _error(
                "must be printable ASCII without control characters; found {char} at "
                "position {position}",
                char=f"U+{ord(char):04X}",
                position=position,
            )
    raise _error("must not be empty or start or end with a space")


def pattern_reason(pattern: str, value: Any) -> str | None:
    """Why ``value`` does not match an id's or a text's pattern (pydantic's message shows the
    regular expression); None for another pattern."""
    if not isinstance(value, str) or pattern not in (ID_PATTERN, TEXT_PATTERN):
        return None
    try:
        check_id(value) if pattern == ID_PATTERN else check_text(value)
    except PydanticCustomError as exc:
        return exc.message()
    return None


def check_text(value: str) -> str:
    """Free text (channel, merchant category, label source): no control characters."""
    found = _CONTROL.search(value)
    if found:
        raise _error(
            "must not hold control characters; found {char} at position {position}",
            char=f"U+{ord(found.group()):04X}",
            position=found.start(),
        )
    return value


def check_amount(value: float, info: ValidationInfo) -> float:
    """A finite amount no larger than RIVERWATCH_MAX_AMOUNT."""
    limit = limits_of(info).max_amount
    if not math.isfinite(value) or value > limit:
        raise _error(
            "must be a finite number at most {limit} (RIVERWATCH_MAX_AMOUNT)",
            "out_of_range",
            limit=f"{limit:g}",
        )
    return value


def check_value(value: float, info: ValidationInfo) -> float:
    """A finite number no larger in magnitude than RIVERWATCH_MAX_ABS_VALUE."""
    limit = limits_of(info).max_abs_value
    if not math.isfinite(value) or abs(value) > limit:
        raise _error(
            "must be a finite number between -{limit} and {limit} (RIVERWATCH_MAX_ABS_VALUE)",
            "out_of_range",
            limit=f"{limit:g}",
        )
    return value


def not_boolean(value: Any) -> Any:
    """Refuse JSON booleans where a number is due (pydantic reads ``true`` as 1)."""
    if isinstance(value, bool):
        raise _error("must be a number, not a boolean")
    return value


def _window(
    seconds: float, limits: EventLimits, shown: str | Callable[[], str], now: float | None = None
) -> None:
    skew = limits.max_future_skew_s
    ahead = now is not None and skew > 0 and seconds > now + skew
    if limits.min_epoch <= seconds < limits.max_epoch and not ahead:
        return  # (before any message is built: ~0.4 us an event on the scorer's path)
    shown = shown if isinstance(shown, str) else shown()
    if seconds < limits.min_epoch:
        raise _error(
            "{shown} is before {bound} (RIVERWATCH_MIN_EVENT_TIME)",
            "out_of_range",
            shown=shown,
            bound=_iso(limits.min_epoch),
        )
    if seconds >= limits.max_epoch:
        raise _error(
            "{shown} is not before {bound} (RIVERWATCH_MAX_EVENT_TIME)",
            "out_of_range",
            shown=shown,
            bound=_iso(limits.max_epoch),
        )
    if ahead and now is not None:
        raise _error(
            "{shown} is more than {skew} s ahead of the clock ({now}; "
            "RIVERWATCH_MAX_FUTURE_SKEW_S)",
            "out_of_range",
            shown=f"{shown} {_iso(seconds)}" if shown == "the time" else shown,
            skew=f"{skew:g}",
            now=_iso(now),
        )


def _epoch(value: int | float, limits: EventLimits, now: float | None) -> datetime:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number):
        raise _error("must be a finite epoch number")
    unit = "milliseconds" if abs(number) >= MS_FROM else "seconds"
    seconds = number / 1000 if unit == "milliseconds" else number
    _window(seconds, limits, lambda: f"epoch {number:.15g} (read as {unit})", now)
    return datetime.fromtimestamp(seconds, UTC)


def event_time(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> datetime:
    """An event time: ISO 8601 (naive is UTC) or an epoch number (or numeric string), as an
    aware UTC datetime inside the window (and not too far ahead of the context's ``now``).

    Seconds below 1e11, milliseconds from 1e11 on (pydantic alone switches at 2e10, silently).
    """
    limits = limits_of(info)
    if isinstance(value, bool):
        raise _error("must be an ISO 8601 string or epoch seconds, not a boolean")
    if isinstance(value, str) and value[4:5] != "-":  # not YYYY-...: maybe a number
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, int | float):
        return _epoch(value, limits, now_of(info))
    parsed: datetime = handler(value)
    try:
        utc = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        seconds = utc.timestamp()
    except (OverflowError, ValueError):  # year 1 ahead of UTC or 9999 behind it
        seconds = -math.inf if parsed.year < 5000 else math.inf
    _window(seconds, limits, "the time", now_of(info))
    return utc
