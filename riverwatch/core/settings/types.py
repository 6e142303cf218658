"""The list and map settings' parsers: each turns its environment string into the typed value
once, when the Settings are built, and takes the typed value as it is.

The fields are declared ``Annotated[..., NoDecode]``: pydantic-settings then hands the
variable's text to these parsers instead of decoding it as JSON, so every value written so
far (``a,b``, ``k=v,k2=v2``) keeps its meaning. A bad value raises ValueError naming the
variable; pydantic reports it as a ValidationError on the field, at start-up.
:func:`to_env_text` writes a parsed value back in the same form (``to_env``: a child process
reads it again).

>>> comma_list(" a, ,b ")
('a', 'b')
>>> sorted(parse_roles("monitoring, forecasting"))
[<Role.FORECASTING: 'forecasting'>, <Role.MONITORING: 'monitoring'>]
>>> parse_kind_seconds(" fraud=0, drift=120 ")
{'fraud': 0.0, 'drift': 120.0}
>>> parse_periods("bench.air*=12, other=7")
{'bench.air*': 12, 'other': 7}
>>> to_env_text(parse_periods("a=3,b=5")), to_env_text(comma_list("x,y"))
('a=3,b=5', 'x,y')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from riverwatch.core.outputs import AlertKind
from riverwatch.core.parsing import ATTRIBUTE_NAME, comma_list, parse_periods
from riverwatch.core.parsing import items as _items
from riverwatch.core.parsing import text as _text
from riverwatch.core.roles import Role

# comma_list and parse_periods live in core/parsing.py (read below the settings too); they
# are the settings' parsers all the same.
__all__ = [
    "comma_list",
    "parse_attributes",
    "parse_kind_seconds",
    "parse_periods",
    "parse_roles",
    "to_env_text",
]


def parse_attributes(value: Any) -> Any:
    """RIVERWATCH_FEATURE_ATTRIBUTES: attribute names, each valid and named once."""
    names = comma_list(value)
    if not isinstance(names, tuple):
        return names
    text = [a for a in names if isinstance(a, str)]
    if bad := [a for a in text if not ATTRIBUTE_NAME.fullmatch(a)]:
        raise ValueError(
            f"RIVERWATCH_FEATURE_ATTRIBUTES: invalid attribute names {bad} "
            "(1-64 letters, digits, '_', '.', '-')"
        )
    if len(set(text)) != len(text):
        raise ValueError(f"RIVERWATCH_FEATURE_ATTRIBUTES names an attribute twice: {names}")
    return names


def parse_roles(value: Any) -> Any:
    """RIVERWATCH_WORKER_ROLES: ``all`` (every role) or some roles, comma-separated."""
    if isinstance(value, str):
        names = _items(value)
    elif isinstance(value, Iterable):
        names = [_text(r) for r in value]
    else:
        return value  # pydantic refuses it, naming the field
    if names == ["all"]:
        return frozenset(Role)
    known = {r.value for r in Role}
    for r in names:
        if r not in known:
            raise ValueError(
                f"RIVERWATCH_WORKER_ROLES: unknown role {r!r} (known: all, {', '.join(Role)})"
            )
    if not names:
        raise ValueError("RIVERWATCH_WORKER_ROLES is empty: name at least one role, or 'all'")
    return frozenset(Role(r) for r in names)


def parse_kind_seconds(value: Any) -> Any:
    """RIVERWATCH_ALERT_COOLDOWN_KINDS: ``"fraud=0,retrain=0"`` (or a mapping) -> seconds by
    alert kind; ValueError naming the variable for an unknown kind, a value that is not a
    number or a negative one."""
    variable = "RIVERWATCH_ALERT_COOLDOWN_KINDS"
    known = {k.value for k in AlertKind}

    def refuse(item: str) -> ValueError:
        return ValueError(
            f"{variable}: {item!r} is not 'kind=seconds' with a known kind "
            f"(known: {', '.join(AlertKind)})"
        )

    if isinstance(value, Mapping):
        pairs = [(_text(k), v, f"{_text(k)}={v}") for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for item in _items(value):
            kind, sep, seconds = (s.strip() for s in item.partition("="))
            if not sep:
                raise refuse(item)
            pairs.append((kind, seconds, item))
    else:
        return value  # pydantic refuses it, naming the field
    out: dict[AlertKind, float] = {}
    for kind, seconds, item in pairs:
        if kind not in known:
            raise refuse(item)
        try:
            out[AlertKind(kind)] = float(seconds)
        except (TypeError, ValueError):
            raise ValueError(f"{variable}: {seconds!r} is not a number of seconds") from None
        if out[AlertKind(kind)] < 0:
            raise ValueError(f"{variable}: {item!r} has a negative cooldown")
    return out


def to_env_text(value: Any) -> str:
    """A parsed list or map setting written back as its environment string."""
    if isinstance(value, Mapping):
        return ",".join(f"{_text(k)}={_text(v)}" for k, v in value.items())
    if isinstance(value, frozenset | set):
        return ",".join(sorted(map(_text, value)))
    if isinstance(value, list | tuple):
        return ",".join(map(_text, value))
    return _text(value)
