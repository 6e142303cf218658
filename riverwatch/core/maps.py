"""The bounds of a record's maps (``groups``, ``attributes``): how many keys, and each key and
value, checked before pydantic validates the items one by one (split from core.limits, whose
bounds and helpers they use).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from riverwatch.core.limits import (
    _CONTROL,
    _ID,
    EventLimits,
    _error,
    check_id,
    check_text,
    limits_of,
    show,
)


def _check_entry(key: Any, value: Any, limits: EventLimits) -> None:
    if not isinstance(key, str):
        return  # JSON keys are strings; the field's type reports anything else
    if len(key) > limits.max_key_chars:
        raise _error(
            "key {key} is longer than {limit} characters (RIVERWATCH_MAX_KEY_CHARS)",
            key=show(key),
            limit=limits.max_key_chars,
        )
    try:
        check_id(key)
    except PydanticCustomError as exc:
        raise _error("key {key}: {why}", key=show(key), why=exc.message()) from None
    if isinstance(value, str):
        if len(value) > limits.max_value_chars:
            raise _error(
                "the value of {key} is longer than {limit} characters (RIVERWATCH_MAX_VALUE_CHARS)",
                key=show(key),
                limit=limits.max_value_chars,
            )
        try:
            check_text(value)
        except PydanticCustomError as exc:
            raise _error("the value of {key} {why}", key=show(key), why=exc.message()) from None
    elif (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not abs(value) <= limits.max_abs_value  # also NaN
    ):
        raise _error(
            "the value of {key} must be a finite number between -{limit} and {limit} "
            "(RIVERWATCH_MAX_ABS_VALUE)",
            "out_of_range",
            key=show(key),
            limit=f"{limits.max_abs_value:g}",
        )


def check_map(value: Any, info: ValidationInfo) -> Any:
    """``groups`` / ``attributes``: at most RIVERWATCH_MAX_MAP_KEYS keys, bounded keys and
    values; checked before pydantic validates the items one by one."""
    if not value or not isinstance(value, dict):
        return value
    limits = limits_of(info)
    if len(value) > limits.max_map_keys:
        raise _error(
            "has {count} keys; at most {limit} are allowed (RIVERWATCH_MAX_MAP_KEYS)",
            count=len(value),
            limit=limits.max_map_keys,
        )
    keys, texts = limits.max_key_chars, limits.max_value_chars
    for key, item in value.items():
        fine = isinstance(key, str) and len(key) <= keys and _ID.fullmatch(key) is not None
        if isinstance(item, str):
            fine = fine and len(item) <= texts and not _CONTROL.search(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            fine = fine and abs(item) <= limits.max_abs_value
        if not fine:
            _check_entry(key, item, limits)  # raises the reason (or leaves it to the type)
    return value
