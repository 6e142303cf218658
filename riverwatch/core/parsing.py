"""The plain text forms of lists and maps (``a,b``, ``k=v,k2=v2``) read below the settings.

The settings' parsers (core/settings/types.py) build on these; code below the composition root
reads the same forms without importing the settings (``FeatureSet.parse``, ``period_for``).

>>> comma_list(" a, ,b ")
('a', 'b')
>>> parse_periods("bench.air*=12, other=7")
{'bench.air*': 12, 'other': 7}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

# A producer attribute's name (RIVERWATCH_FEATURE_ATTRIBUTES); models.feature_set checks it too.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def items(value: str) -> list[str]:
    """The stripped, non-empty items of a comma-separated string."""
    return [p.strip() for p in value.split(",") if p.strip()]


def text(value: Any) -> str:
    """An item as text: an enum member's value, else ``str``."""
    return str(value.value) if isinstance(value, Enum) else str(value)


def comma_list(value: Any) -> Any:
    """``"a, b"`` -> ``("a", "b")``; a list or tuple is kept (its items stripped when text)."""
    if isinstance(value, str):
        return tuple(items(value))
    if isinstance(value, list | tuple):
        return tuple(v.strip() if isinstance(v, str) else v for v in value)
    return value  # pydantic refuses it, naming the field


def parse_periods(value: Any) -> Any:
    """RIVERWATCH_FORECAST_SEASONALITY: ``"id=12,sim.*=1440"`` (or a mapping) -> the period of
    the series each fnmatch pattern names, in the order given (the first match wins, so a
    pattern given twice keeps its first period)."""
    if isinstance(value, Mapping):
        pairs = [(text(k), str(v), f"{text(k)}={v}") for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for item in items(value):
            pattern, _, period = item.partition("=")
            pairs.append((pattern.strip(), period.strip(), item))
    else:
        return value  # pydantic refuses it, naming the field
    out: dict[str, int] = {}
    for pattern, period, item in pairs:
        if not period.isdigit():
            raise ValueError(
                f"RIVERWATCH_FORECAST_SEASONALITY: override {item!r} must be 'series_id=period' "
                "with a whole number of points (e.g. 'bench.airline=12')"
            )
        out.setdefault(pattern, int(period))
    return out
