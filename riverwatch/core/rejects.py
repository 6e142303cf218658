"""Counters of rejected transactions per field, kind and reason, for the monitor's data quality.

Where a transaction is rejected (the API's 422/``rejected``, the scorer's dead letters), each
rejected record adds 1 to ``records`` and 1 to each ``field|kind|reason`` it broke, in one
Redis hash (``Names.monitor("rejects")``). The monitor reads the hash once per window and
counts the difference to its previous read (``monitors.dataquality``).

Bounded whatever the input: ``field`` is a field of the contract, ``(unknown field)`` or
``(record)`` (an unknown field's name is user text and is never a key), ``kind`` one of
``missing``, ``invalid``, ``out_of_range``, and ``reason`` pydantic's error type (a closed set:
``missing``, ``string_pattern_mismatch``, ``out_of_range``, ...) or ``other``.

>>> from riverwatch.core.events import Transaction, parse_event
>>> from riverwatch.core.errors import InvalidEvent
>>> try:
...     parse_event(Transaction, {"event_id": "e", "timestamp": 0, "card_id": "c",
...                               "amount": 1e300, "ammount": 1})
... except InvalidEvent as exc:
...     sorted(reject_keys(exc, Transaction.model_fields))
['(unknown field)|invalid|extra_forbidden', 'amount|out_of_range|out_of_range', \
'terminal_id|missing|missing']
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable

from riverwatch.core.errors import InvalidEvent

RECORDS = "records"  # the hash field counting rejected records
MISSING, INVALID, OUT_OF_RANGE = "missing", "invalid", "out_of_range"
_OUT = {"out_of_range", "greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_REASON = re.compile(r"[a-z_]{1,40}")
NOT_VALIDATED = "(record)|invalid|not_validated"  # not a JSON object, a validator's bug


def kind_of(error_type: str) -> str:
    """``missing``, ``out_of_range`` or ``invalid`` for a pydantic error type."""
    if error_type == "missing":
        return MISSING
    return OUT_OF_RANGE if error_type in _OUT else INVALID


def reject_keys(exc: InvalidEvent, fields: Collection[str]) -> set[str]:
    """The ``field|kind|reason`` keys one rejected record counts once each."""
    keys = set()
    for field, error_type in exc.kinds:
        if field not in fields:
            field = "(unknown field)" if error_type == "extra_forbidden" else "(record)"
        reason = error_type if _REASON.fullmatch(error_type) else "other"
        keys.add(f"{field}|{kind_of(error_type)}|{reason}")
    return keys or {NOT_VALIDATED}


def tally(rejected: Iterable[set[str]]) -> Counter[str]:
    """The hash increments of a batch of rejected records (their :func:`reject_keys`)."""
    out: Counter[str] = Counter()
    for keys in rejected:
        out[RECORDS] += 1
        out.update(keys)
    return out
