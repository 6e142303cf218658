"""Stored feature rows as the learner and the monitor read them: decoded and checked whole
before any of a batch's rows changes a model or a window.

A row that cannot be read (not JSON, a column missing, ``x`` of the wrong length or with a
value that is not a number) raises :class:`UnusableRow` naming what is wrong. Raising before
anything is learned or windowed is what lets the batch be split safely to find the label or
score it belongs to (``streams.records.isolate``): the halves handled again change nothing
twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from riverwatch.models.feature_set import row_features, row_names
from riverwatch.models.features import FEATURE_NAMES

_NUMBER = (int, float)
# The exact types orjson gives a JSON number or null (never bool's subclass of int, which
# isinstance would let through).
_X_TYPES = frozenset({int, float})
_X_TYPES_NULLS = _X_TYPES | {type(None)}
_OPTIONAL_NUMBERS = ("score", "online_score", "batch_score", "shadow_score")


# Base features added since rows were first stored (issue 17: the card's maximums), last of
# the base columns. A row stored before them, as an upgrade leaves a label delay's worth of
# them waiting for their labels, reads them as missing (as training reads a column its older
# files lack, models.training) instead of being unusable: its label is learned and monitored.
ADDED = ("card_max_1d", "card_max_7d", "card_amount_over_max_7d")
_AT = FEATURE_NAMES.index(ADDED[0])


def _upgraded(row: dict[str, Any]) -> bool:
    """Give a row stored before :data:`ADDED` their columns, as nulls; True if it was one."""
    x = row.get("x")
    if not isinstance(x, list) or len(x) != len(row_names(row)) - len(ADDED):
        return False
    row["x"] = [*x[:_AT], *[None] * len(ADDED), *x[_AT:]]
    return True


class UnusableRow(ValueError):
    """A stored feature row its label or score cannot be handled with."""


def _decode(event_id: str, raw: bytes | str) -> dict[str, Any]:
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UnusableRow(f"the feature row of {event_id} is not JSON: {exc}") from None
    if not isinstance(row, dict):
        raise UnusableRow(f"the feature row of {event_id} is not an object")
    return row


def _number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(x: list[Any], nulls: bool) -> bool:
    """Every value of ``x`` a finite number (or, with ``nulls``, None). Over builtins only
    (map, filter): the same check value by value in Python was a third of the monitor's CPU
    per score."""
    if not set(map(type, x)) <= (_X_TYPES_NULLS if nulls else _X_TYPES):
        return False
    try:  # filter(None, ...) leaves out None and the zeros, which are finite
        return all(map(math.isfinite, filter(None, x)))
    except OverflowError:  # an int past a float's range
        return False


def _problem(row: Mapping[str, Any], nulls: bool, features: bool = True) -> str | None:
    """What makes ``row`` unusable, or None (``nulls``: ``x`` may hold nulls, NaN once;
    ``features``: ``x`` is read)."""
    if not _number(row.get("epoch")):
        return "epoch is not a number"
    if not features:
        return None
    attrs = row.get("attrs")
    if attrs is not None and not (
        isinstance(attrs, list) and all(isinstance(a, str) for a in attrs)
    ):
        return "attrs is not a list of names"
    x = row.get("x")
    if not isinstance(x, list) or len(x) != len(row_names(row)):
        return f"x is not a list of {len(row_names(row))} values"
    if not _numbers(x, nulls):
        return "x holds a value that is not a number"
    return None


def learnable(event_id: str, raw: bytes | str) -> tuple[dict[str, Any], dict[str, float]]:
    """The learner's row of ``event_id`` (``raw``: its stored JSON) and its features by name
    (``models.feature_set.row_features``); raises
    :class:`UnusableRow` when a label cannot be learned from it.

    >>> from riverwatch.models.features import FEATURE_NAMES
    >>> n = len(FEATURE_NAMES)
    >>> row, x = learnable("e1", orjson.dumps({"epoch": 1.0, "terminal_id": "t", "x": [0.5] * n}))
    >>> len(x) == n
    True
    >>> learnable("e2", b'{"epoch": 1.0, "terminal_id": "t", "x": [1]}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    riverwatch.streams.rows.UnusableRow: the feature row of e2: x is not a list of ... values
    """
    row = _decode(event_id, raw)
    problem = _problem(row, nulls=_upgraded(row))
    if problem is None and not isinstance(row.get("terminal_id"), str):
        problem = "terminal_id is not a string"
    if problem is not None:
        raise UnusableRow(f"the feature row of {event_id}: {problem}")
    return row, {k: v for k, v in row_features(row).items() if v is not None}


def monitorable(event_id: str, raw: bytes | str, features: bool = True) -> dict[str, Any]:
    """The monitor's row of ``event_id``; raises :class:`UnusableRow` when its windows cannot
    take it (``x`` may hold nulls: the monitor reads them as missing values; without
    ``features``, for a label's windows, ``x`` is not read).

    >>> monitorable("e1", b'{"epoch": 1.0, "x": [null], "attrs": []}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    riverwatch.streams.rows.UnusableRow: the feature row of e1: x is not a list of ... values
    """
    row = _decode(event_id, raw)
    if features:
        _upgraded(row)
    problem = _problem(row, nulls=True, features=features)
    for key in ("groups", "dq"):
        if problem is None and not isinstance(row.get(key) or {}, dict):
            problem = f"{key} is not an object"
    for key in _OPTIONAL_NUMBERS:
        v = row.get(key)
        if problem is None and v is not None and not isinstance(v, _NUMBER):
            problem = f"{key} is not a number"
    if problem is None and not isinstance(row.get("decision") or "", str):
        problem = "decision is not a string"
    if problem is not None:
        raise UnusableRow(f"the feature row of {event_id}: {problem}")
    return row
