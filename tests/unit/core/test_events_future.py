"""Event times far ahead of the wall clock (RIVERWATCH_MAX_FUTURE_SKEW_S): refused where a
record comes in (the API's validation and the workers' parse_batch), with the field and the
limit; the clock is passed in, never read by the validation itself."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from riverwatch.context_parts import event_limits
from riverwatch.core.errors import InvalidEvent
from riverwatch.core.events import Label, MetricPoint, Transaction, parse_event
from riverwatch.core.limits import DEFAULT_LIMITS
from riverwatch.core.rejects import reject_keys
from riverwatch.core.settings import Settings
from riverwatch.streams.records import Record, parse_batch, parse_labels

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0
TX = {"event_id": "e1", "card_id": "c1", "terminal_id": "t1", "amount": 1.0}
RECORDS: dict[type[Any], dict[str, Any]] = {
    Transaction: TX,
    Label: {"event_id": "e1", "label": 1},
    MetricPoint: {"series_id": "s1", "value": 1.0},
}


def reject(model: type[Any], stamp: Any, **kw: Any) -> dict[str, str]:
    """The only error of a ``model`` record stamped ``stamp`` (the same as dict and JSON)."""
    record = {**RECORDS[model], "timestamp": stamp}
    errors = []
    for raw in (record, json.dumps(record).encode()):
        with pytest.raises(InvalidEvent) as caught:
            parse_event(model, raw, **kw)
        errors.append(caught.value.errors)
    assert errors[0] == errors[1] and len(errors[0]) == 1
    return errors[0][0]


@pytest.mark.parametrize("model", list(RECORDS))
@pytest.mark.parametrize(
    "stamp", ["2099-01-01T00:00:00Z", NOW + DAY + 1, (NOW + 2 * DAY) * 1000, str(NOW + 2 * DAY)]
)
def test_an_event_time_more_than_the_skew_ahead_of_now_is_refused(
    model: type[Any], stamp: Any
) -> None:
    error = reject(model, stamp, now=NOW)
    assert error["field"] == "timestamp"
    assert (
        "s ahead of the clock (2026-12-03T12:00:00Z; RIVERWATCH_MAX_FUTURE_SKEW_S)"
        in (error["reason"])
    )
    assert "more than 86400 s" in error["reason"]


def test_the_reason_shows_the_time_refused() -> None:
    assert reject(Label, "2099-01-01T00:00:00Z", now=NOW)["reason"] == (
        "the time 2099-01-01T00:00:00Z is more than 86400 s ahead of the clock "
        "(2026-12-03T12:00:00Z; RIVERWATCH_MAX_FUTURE_SKEW_S)"
    )
    assert reject(Label, NOW + 2 * DAY, now=NOW)["reason"].startswith(
        f"epoch {NOW + 2 * DAY:.0f} (read as seconds) is more than 86400 s ahead"
    )


@pytest.mark.parametrize("model", list(RECORDS))
def test_up_to_the_skew_ahead_and_any_past_time_pass(model: type[Any]) -> None:
    for stamp in (NOW + DAY, NOW, "2026-01-01T00:00:00Z", 0):
        parse_event(model, {**RECORDS[model], "timestamp": stamp}, now=NOW)


def test_without_now_or_with_skew_0_only_the_calendar_window_applies() -> None:
    record = {**TX, "timestamp": "2099-01-01T00:00:00Z"}
    parse_event(Transaction, record)  # a record riverwatch stored itself: no clock
    off = replace(DEFAULT_LIMITS, max_future_skew_s=0.0)
    parse_event(Transaction, record, off, now=NOW)
    short = replace(DEFAULT_LIMITS, max_future_skew_s=60.0)
    assert "more than 60 s" in reject(Transaction, NOW + 61, limits=short, now=NOW)["reason"]
    parse_event(Transaction, {**TX, "timestamp": NOW + 60}, short, now=NOW)


def test_the_skew_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert event_limits(Settings()).max_future_skew_s == DAY == DEFAULT_LIMITS.max_future_skew_s
    monkeypatch.setenv("RIVERWATCH_MAX_FUTURE_SKEW_S", "0")
    assert event_limits(Settings()).max_future_skew_s == 0.0
    monkeypatch.setenv("RIVERWATCH_MAX_FUTURE_SKEW_S", "-1")
    with pytest.raises(ValueError, match="max_future_skew_s"):
        Settings()


def test_a_far_future_event_is_counted_as_out_of_range() -> None:
    """The monitor's data-quality counters see it as a bound (core.rejects), on its field."""
    with pytest.raises(InvalidEvent) as caught:
        parse_event(Transaction, {**TX, "timestamp": NOW + 2 * DAY}, now=NOW)
    assert caught.value.kinds == [("timestamp", "out_of_range")]
    assert reject_keys(caught.value, Transaction.model_fields, "transactions")


def rec(value: dict[str, Any], offset: int) -> Record:
    return Record("labels", 0, offset, b"k", json.dumps(value).encode())


def test_the_workers_dead_letter_it_with_the_reason_against_the_wall_clock() -> None:
    """parse_batch reads the wall clock once per batch (or takes ``now``)."""
    ahead = time.time() + 2 * DAY
    records = [rec({**TX, "timestamp": ahead}, 0), rec({**TX, "timestamp": NOW - DAY}, 1)]
    broken: list[set[str]] = []
    parsed, bad = parse_batch(Transaction, records, None, broken)
    assert [r.offset for r, _ in parsed] == [1] and [r.offset for r, _ in bad] == [0]
    assert bad[0][1].startswith("timestamp: epoch ")
    assert bad[0][1].endswith("RIVERWATCH_MAX_FUTURE_SKEW_S)")
    assert len(broken) == 1
    parsed, bad = parse_batch(Transaction, records, None, None, now=ahead)
    assert len(parsed) == 2 and not bad
    off = replace(DEFAULT_LIMITS, max_future_skew_s=0.0)
    assert not parse_batch(Transaction, records, off)[1]
    labels, bad = parse_labels([rec({"event_id": "l1", "label": 0, "timestamp": ahead}, 0)])
    assert not labels and "RIVERWATCH_MAX_FUTURE_SKEW_S" in bad[0][1]
