"""Score, alert and control records read from their topics are bounded (core.outputs): a record
written straight to Kafka with a NaN, a probability out of [0, 1], an unbounded id or a
far-away time is refused with ``field: reason`` (so dead-lettered), not monitored or stored.
Records riverwatch builds in code keep validating as before."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from riverwatch.core.errors import InvalidEvent
from riverwatch.core.events import parse_event
from riverwatch.core.limits import DEFAULT_LIMITS
from riverwatch.core.outputs import MESSAGE_MAX_CHARS, Alert, Control, Score
from riverwatch.streams.records import Record, parse_batch

T = 1_767_225_660  # 2026-01-01T00:01:00Z
SCORE: dict[str, Any] = {
    "event_id": "e1", "card_id": "c1", "timestamp": T, "score": 0.1, "online_score": 0.1,
    "decision": "approve", "model_versions": {"online": "v1"}, "latency_ms": 1.0,
    "scored_at": T, "reasons": [{"feature": "amount", "value": 3.0, "contribution": 0.2}],
}  # fmt: skip
ALERT: dict[str, Any] = {
    "alert_id": "a1", "kind": "system", "severity": "info", "subject": "s",
    "message": "m", "details": {"x": 1}, "timestamp": T,
}  # fmt: skip
CONTROL: dict[str, Any] = {
    "action": "rollback", "target": "batch", "request_id": "r1", "timestamp": T,
}  # fmt: skip
GOOD = {Score: SCORE, Alert: ALERT, Control: CONTROL}


def raw(record: dict[str, Any]) -> bytes:
    """JSON as a hostile producer may write it (NaN, Infinity, 1e400 are what json writes)."""
    return json.dumps(record).replace("1e999", "1e400").encode()


def reason(model: type[Any], **change: Any) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(model, raw({**GOOD[model], **change}))
    return str(caught.value)


@pytest.mark.parametrize("model", list(GOOD))
def test_the_records_riverwatch_writes_are_read(model: type[Any]) -> None:
    parse_event(model, raw(GOOD[model]))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"score": math.nan}, "score: Input should be a finite number"),
        ({"score": math.inf}, "score: Input should be a finite number"),
        ({"online_score": -math.inf}, "online_score: Input should be a finite number"),
        ({"score": 1.5}, "score: must be a probability between 0 and 1"),
        ({"score": 2**70}, "score: must be a probability between 0 and 1"),
        ({"batch_score": -0.1}, "batch_score: must be a probability between 0 and 1"),
        ({"shadow_score": math.nan}, "shadow_score: Input should be a finite number"),
        ({"score": True}, "score: Input should be a valid number"),
        ({"score": "0.5"}, "score: Input should be a valid number"),
        ({"latency_ms": -1.0}, "latency_ms: Input should be greater than or equal to 0"),
        ({"latency_ms": math.inf}, "latency_ms: Input should be a finite number"),
        ({"event_id": "e" * 500}, "event_id: String should have at most 128 characters"),
        ({"card_id": "c\r\n1"}, "card_id: must be printable ASCII"),
        ({"timestamp": "9999-12-31T23:59:59Z"}, "timestamp: the time is not before 2100"),
        ({"timestamp": "0001-01-01T00:00:00Z"}, "timestamp: the time is before 1970"),
        ({"scored_at": 1e20}, "scored_at: epoch 1e+20 (read as milliseconds) is not before"),
        ({"model_versions": {f"m{i}": "v" for i in range(17)}}, "model_versions: Dictionary"),
        ({"model_versions": {"online": "v" * 500}}, "model_versions.online: String should"),
        ({"reasons": [SCORE["reasons"][0]] * 65}, "reasons: List should have at most 64"),
        ({"reasons": [{"feature": "f", "value": math.nan, "contribution": 0}]}, "reasons.0.value"),
        (
            {"reasons": [{"feature": "f", "value": 0, "contribution": math.inf}]},
            "reasons.0.contribution",
        ),
    ],
)
def test_a_score_out_of_bounds_is_refused(change: dict[str, Any], why: str) -> None:
    assert reason(Score, **change).startswith(why)


@pytest.mark.parametrize(
    ("model", "change", "why"),
    [
        (Alert, {"details": {"x": math.nan}}, "details: 'x' must be a finite number"),
        (Alert, {"details": {"a": [1, {"b": math.inf}]}}, "details: 'a'.1.'b' must be a finite"),
        (Alert, {"details": {"x": 2**70}}, "details: 'x' must be an integer within 64 bits"),
        (
            Alert,
            {"details": {"x": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}},
            "details: 'x'" + ".0" * 15 + " nests more",
        ),
        (Alert, {"alert_id": "a" * 2000}, "alert_id: String should have at most 1024"),
        (Alert, {"alert_id": ""}, "alert_id: String should have at least 1"),
        (Alert, {"subject": "s" * 2000}, "subject: String should have at most 1024"),
        (Alert, {"subject": "a\nb"}, "subject: must not hold control characters"),
        (Alert, {"message": "m" * (MESSAGE_MAX_CHARS + 1)}, "message: String should have at"),
        (Alert, {"timestamp": "9999-12-31T23:59:59Z"}, "timestamp: the time is not before"),
        (Control, {"details": {"now": math.inf}}, "details: 'now' must be a finite number"),
        (Control, {"details": {"now": math.nan}}, "details: 'now' must be a finite number"),
        (Control, {"reason": "r" * (MESSAGE_MAX_CHARS + 1)}, "reason: String should have at"),
        (Control, {"timestamp": "0001-01-01T00:00:00Z"}, "timestamp: the time is before 1970"),
    ],
)
def test_an_alert_or_control_record_out_of_bounds_is_refused(
    model: type[Any], change: dict[str, Any], why: str
) -> None:
    assert reason(model, **change).startswith(why)


def test_unknown_fields_are_still_ignored() -> None:
    """A newer writer's field must not dead-letter a rolling upgrade's records."""
    parse_event(Score, raw({**SCORE, "new_field": 1}))


def test_records_built_in_code_keep_their_nan_statistics_and_plain_times() -> None:
    """The monitor's code may put NaN in an alert's details (JSON writes null); FastAPI checks
    /v1/score's answer without a context: neither is refused."""
    alert = Alert(**{**ALERT, "details": {"psi": math.nan}})
    assert math.isnan(alert.details["psi"])
    parse_event(Alert, raw({**ALERT, "subject": ""}))  # the policy's subjects may be empty
    late = datetime(2150, 1, 1, tzinfo=UTC)
    assert Score.model_validate({**SCORE, "timestamp": late}).timestamp == late


def test_the_monitor_reads_scores_within_its_limits_and_the_clock() -> None:
    """parse_batch passes the worker's limits and the clock: a score stamped more than the
    skew ahead is dead-lettered, unless the bound is off (replays)."""
    ahead = datetime.now(UTC).timestamp() + 3 * 86_400
    records = [Record("scores", 0, 0, b"c1", raw({**SCORE, "timestamp": ahead}))]
    parsed, bad = parse_batch(Score, records, DEFAULT_LIMITS, topic="scores")
    assert not parsed and "RIVERWATCH_MAX_FUTURE_SKEW_S" in bad[0][1]
    off = replace(DEFAULT_LIMITS, max_future_skew_s=0.0)
    assert len(parse_batch(Score, records, off, topic="scores")[0]) == 1
