"""Counters of rejected records per field, kind and reason, for the monitor's data quality.

Where a record is rejected (the API's 422/``rejected``, a worker's dead letters), each
rejected record adds 1 to its topic's records counter and 1 to each ``field|kind|reason`` it
broke, in one Redis hash (``Names.monitor("rejects")``). The monitor reads the hash once per
window and counts the difference to its previous read (``monitors.dataquality``).

Per topic: a transaction's counters are ``records`` and ``field|kind|reason`` (as before
labels and metric points were counted); a label's ``records.labels`` and
``labels.field|kind|reason``, a metric point's ``records.metrics`` and
``metrics.field|kind|reason``. The workers count the records of those two topics that passed
too (``valid.labels``, ``valid.metrics``: the rates' denominators; a transaction's is the
scored rows the monitor sees). A worker counts each record once whatever the redeliveries
(``streams.rejects``).

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

RECORDS = "records"  # the hash field counting rejected transactions
TOPICS = ("transactions", "labels", "metrics")  # the topics whose rejects are counted
MISSING, INVALID, OUT_OF_RANGE = "missing", "invalid", "out_of_range"
_OUT = {"out_of_range", "greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_REASON = re.compile(r"[a-z_]{1,40}")
NOT_VALIDATED = "(record)|invalid|not_validated"  # not a JSON object, a validator's bug


def kind_of(error_type: str) -> str:
    """``missing``, ``out_of_range`` or ``invalid`` for a pydantic error type."""
    if error_type == "missing":
        return MISSING
    return OUT_OF_RANGE if error_type in _OUT else INVALID


def prefix(topic: str) -> str:
    """What the counters' fields of ``topic``'s records start with (``""`` for transactions)."""
    return "" if topic == "transactions" else f"{topic}."


def records_key(topic: str) -> str:
    """The hash field counting ``topic``'s rejected records."""
    return RECORDS if topic == "transactions" else f"{RECORDS}.{topic}"


def valid_key(topic: str) -> str:
    """The hash field counting ``topic``'s records that passed (labels and metrics)."""
    return f"valid.{topic}"


def topic_of(field: str) -> str:
    """The topic a counted field (``labels.label``, ``amount``) belongs to.

    >>> topic_of("labels.label"), topic_of("metrics.value"), topic_of("amount")
    ('labels', 'metrics', 'transactions')
    """
    head = field.split(".", 1)[0]
    return head if head in TOPICS and "." in field else "transactions"


def reject_keys(
    exc: InvalidEvent, fields: Collection[str], topic: str = "transactions"
) -> set[str]:
    """The ``field|kind|reason`` keys one rejected record of ``topic`` counts once each.

    >>> from riverwatch.core.events import Label, parse_event
    >>> try:
    ...     parse_event(Label, {"event_id": "e", "label": 7, "timestamp": 0})
    ... except InvalidEvent as exc:
    ...     sorted(reject_keys(exc, Label.model_fields, "labels"))
    ['labels.label|invalid|literal_error']
    """
    keys = set()
    pre = prefix(topic)
    for field, error_type in exc.kinds:
        if field not in fields:
            field = "(unknown field)" if error_type == "extra_forbidden" else "(record)"
        reason = error_type if _REASON.fullmatch(error_type) else "other"
        keys.add(f"{pre}{field}|{kind_of(error_type)}|{reason}")
    return keys or {pre + NOT_VALIDATED}


def tally(rejected: Iterable[set[str]], topic: str = "transactions") -> Counter[str]:
    """The hash increments of a batch of rejected records of ``topic`` (their
    :func:`reject_keys`)."""
    out: Counter[str] = Counter()
    records = records_key(topic)
    for keys in rejected:
        out[records] += 1
        out.update(keys)
    return out
