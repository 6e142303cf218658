"""The bounds of the input contracts (core/events.py, core/limits.py), issue 13 findings 1, 5,
7 and 9: every hostile value is an InvalidEvent naming its field, never another exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from riverwatch.context_parts import event_limits
from riverwatch.core.errors import InvalidEvent
from riverwatch.core.events import Label, MetricPoint, Transaction, parse_event
from riverwatch.core.settings import Settings

BASE = {
    "event_id": "e1",
    "timestamp": "2026-01-01T00:00:00Z",
    "card_id": "c1",
    "terminal_id": "t1",
    "amount": 12.5,
}


def reject(model: type[Any], record: dict[str, Any], **kw: Any) -> dict[str, str]:
    """The first error of ``record``, which must be refused the same way as dict and as JSON."""
    errors = []
    for raw in (record, json.dumps(record).encode()):
        with pytest.raises(InvalidEvent) as caught:
            parse_event(model, raw, **kw)
        errors.append(caught.value.errors)
    assert errors[0] == errors[1]
    return errors[0][0]


def tx(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


@pytest.mark.parametrize("amount", [1e308, 1e300, 1e9 + 1, 10**400])
def test_huge_amounts_are_refused(amount: float) -> None:
    """Finding 1: `amount: 1e308` overflowed the card's sums; amounts stop at 1e9."""
    error = reject(Transaction, tx(amount=amount))
    assert error["field"] == "amount"
    assert "RIVERWATCH_MAX_AMOUNT" in error["reason"] or "valid number" in error["reason"]


def test_max_amount_comes_from_the_settings() -> None:
    limits = event_limits(Settings.model_construct(max_amount=100.0))
    assert parse_event(Transaction, tx(amount=100), limits).amount == 100.0
    error = reject(Transaction, tx(amount=100.5), limits=limits)
    assert error == {
        "field": "amount",
        "reason": "must be a finite number at most 100 (RIVERWATCH_MAX_AMOUNT)",
    }


@pytest.mark.parametrize("value", [True, False, "12.5", "1", None, [1], {"a": 1}])
def test_amount_takes_numbers_only(value: object) -> None:
    """Finding 9: `amount: true` was read as 1.0."""
    assert reject(Transaction, tx(amount=value))["field"] == "amount"


def test_metric_values_and_labels_take_numbers_only() -> None:
    point = {"series_id": "s", "timestamp": 0, "value": 1}
    for bad in (True, "3", 1e300):
        assert reject(MetricPoint, {**point, "value": bad})["field"] == "value"
    label = {"event_id": "e1", "timestamp": 0, "label": 1}
    assert parse_event(Label, label).label == 1
    assert reject(Label, {**label, "label": True})["reason"] == "must be a number, not a boolean"


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+14:00",  # answered 500 (OverflowError)
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        -1,
        3e10,  # was read as milliseconds (1970-12-11) without a word
        4_102_444_800,  # 2100-01-01: the window's end is exclusive
        1e300,
        10**400,
        "inf",
        True,
    ],
)
def test_timestamps_outside_the_window_are_refused(stamp: object) -> None:
    """Finding 9: a clean error for any timestamp out of the calendar window."""
    error = reject(Transaction, tx(timestamp=stamp))
    assert error["field"] == "timestamp"


def test_epoch_numbers_are_seconds_below_1e11_and_milliseconds_above() -> None:
    at = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    for stamp in (1_700_000_000, 1_700_000_000.0, "1700000000", 1_700_000_000_000):
        assert parse_event(Transaction, tx(timestamp=stamp)).timestamp == at
    reason = reject(Transaction, tx(timestamp=3e10))["reason"]
    assert reason == (
        "epoch 30000000000 (read as seconds) is not before 2100-01-01T00:00:00Z "
        "(RIVERWATCH_MAX_EVENT_TIME)"
    )
    # the simulator's and old replays' dates are in the default window
    for stamp in (0, "2018-04-01T00:00:00Z", "2026-01-01T00:00:00", "2099-12-31T23:59:59Z"):
        parse_event(Transaction, tx(timestamp=stamp))


def test_the_window_comes_from_the_settings() -> None:
    s = Settings.model_construct(
        min_event_time=datetime(2020, 1, 1, tzinfo=UTC),
        max_event_time=datetime(2030, 1, 1, tzinfo=UTC),
    )
    limits = event_limits(s)
    assert reject(Transaction, tx(timestamp=0), limits=limits)["reason"] == (
        "epoch 0 (read as seconds) is before 2020-01-01T00:00:00Z (RIVERWATCH_MIN_EVENT_TIME)"
    )
    parse_event(Transaction, tx(timestamp="2029-12-31T00:00:00Z"), limits)
    with pytest.raises(ValueError, match="MIN_EVENT_TIME"):
        Settings(min_event_time="2030-01-01", max_event_time="2020-01-01")
    assert Settings(min_event_time="2020-01-01").min_event_time.tzinfo is not None


@pytest.mark.parametrize("field", ["event_id", "card_id", "terminal_id", "customer_id"])
@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b", "caf\u00e9", "tab\t", " x", "x" * 129])
def test_ids_are_printable_ascii(field: str, value: str) -> None:
    """Finding 5: ids with CR, LF, NUL or non-ASCII characters were accepted."""
    assert reject(Transaction, tx(**{field: value}))["field"] == field


def test_series_and_label_ids_are_printable_ascii() -> None:
    point = {"series_id": "caf\u00e9.requests", "timestamp": 0, "value": 1}
    assert reject(MetricPoint, point)["reason"] == (
        "must be printable ASCII without control characters; found U+00E9 at position 3"
    )
    assert reject(Label, {"event_id": "e\n", "timestamp": 0, "label": 1})["field"] == "event_id"
    assert reject(Transaction, tx(channel="web\r\n"))["field"] == "channel"
    parse_event(Transaction, tx(card_id="card 1/2:x~", channel="caf\u00e9"))


@pytest.mark.parametrize("field", ["groups", "attributes"])
def test_groups_and_attributes_are_bounded(field: str) -> None:
    """Finding 7: 20,000 group keys, 50,000 attribute keys or a 900 kB value were accepted."""
    many = {f"k{i}": "v" for i in range(17)}
    assert reject(Transaction, tx(**{field: many}))["reason"] == (
        "has 17 keys; at most 16 are allowed (RIVERWATCH_MAX_MAP_KEYS)"
    )
    big = reject(Transaction, tx(**{field: {"k": "v" * 900_000}}))
    assert big["field"] == field and "RIVERWATCH_MAX_VALUE_CHARS" in big["reason"]
    long_key = reject(Transaction, tx(**{field: {"k" * 65: "v"}}))
    assert "RIVERWATCH_MAX_KEY_CHARS" in long_key["reason"] and len(long_key["reason"]) < 200
    assert "U+000A" in reject(Transaction, tx(**{field: {"k\n": "v"}}))["reason"]
    assert "U+0000" in reject(Transaction, tx(**{field: {"k": "v\x00"}}))["reason"]
    ok = {f"k{i}": "v" * 256 for i in range(16)}
    assert getattr(parse_event(Transaction, tx(**{field: ok})), field) == ok


def test_numeric_attributes_are_finite_and_bounded() -> None:
    for bad in (1e300, -1e16, 10**400):
        assert reject(Transaction, tx(attributes={"x": bad}))["field"] == "attributes"
    ok = {"a": True, "b": 3, "c": -2.5, "d": "x"}
    assert parse_event(Transaction, tx(attributes=ok)).attributes == ok


def test_a_record_with_many_unknown_fields_gets_one_error() -> None:
    error = reject(Transaction, tx(**{f"x{i}": 1 for i in range(10_000)}))
    assert error == {"field": "(record)", "reason": "has 10005 fields; a Transaction has 10 fields"}
    with pytest.raises(InvalidEvent) as caught:
        parse_event(Transaction, {f"x{i}": 1 for i in range(15)})
    assert len(caught.value.errors) == 11  # 10 and a count of the rest
    assert caught.value.errors[-1] == {"field": "(record)", "reason": "and 10 more errors"}
