"""The workers' parse-or-dead-letter step (streams/records.py parse_batch) on hostile records."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from riverwatch.context_parts import event_limits
from riverwatch.core.events import Transaction
from riverwatch.core.limits import DEFAULT_LIMITS
from riverwatch.core.settings import Settings
from riverwatch.streams.records import Record, dead_letters, parse_batch

BASE: dict[str, Any] = {
    "event_id": "e1",
    "timestamp": "2026-01-01T00:00:00Z",
    "card_id": "c1",
    "terminal_id": "t1",
    "amount": 12.5,
}
FIELDS = [*BASE, "customer_id", "channel", "merchant_category", "attributes", "groups"]


def rec(value: bytes | None, offset: int = 0) -> Record:
    return Record("transactions", 0, offset, b"k", value)


def test_dead_letters_name_the_field_and_the_reason() -> None:
    """Findings 1 and 9 on the worker side: dead-lettered with `field: reason`, not raised."""
    records = [
        rec(orjson.dumps({**BASE, "amount": 1e308}), 0),
        rec(json.dumps({**BASE, "timestamp": "0001-01-01T00:00:00+14:00"}).encode(), 1),
        rec(orjson.dumps({**BASE, "card_id": "a\r\nb"}), 2),
        rec(orjson.dumps({**BASE, "amount": True}), 3),
        rec(orjson.dumps(BASE), 4),
        rec(None, 5),
    ]
    parsed, bad = parse_batch(Transaction, records)
    assert [r.offset for r, _ in parsed] == [4]
    reasons = [why for _, why in bad]
    assert reasons[0] == "amount: must be a finite number at most 1e+09 (RIVERWATCH_MAX_AMOUNT)"
    assert reasons[1].startswith("timestamp: the time is before 1970-01-01T00:00:00Z")
    assert reasons[2].startswith("card_id: must be printable ASCII")
    assert reasons[3] == "amount: Input should be a valid number"
    assert reasons[4].startswith("(record): Invalid JSON")
    letters = [orjson.loads(o.value) for o in dead_letters("dead", bad, "w1")]
    assert [d["offset"] for d in letters] == [0, 1, 2, 3, 5]
    assert letters[0]["error"] == reasons[0]


def test_the_limits_given_apply() -> None:
    limits = event_limits(Settings.model_construct(max_amount=10.0))
    parsed, bad = parse_batch(Transaction, [rec(orjson.dumps(BASE))], limits)
    assert not parsed and bad[0][1].startswith("amount: must be a finite number at most 10 ")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1e400", "NaN"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _encode(record: dict[str, Any], how: str) -> bytes:
    if how == "orjson":
        try:
            return orjson.dumps(record)
        except (TypeError, orjson.JSONEncodeError):  # big ints: encoded by json below
            pass
    return json.dumps(record).encode("utf-8", "surrogatepass")  # NaN, Infinity, 10**400 ...


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@example({"timestamp": "0001-01-01T00:00:00+14:00"}, [], "orjson")  # issue 13, finding 9
@example({"amount": 1e308}, [], "orjson")  # finding 1
@example({"amount": float("nan"), "attributes": {"x": float("inf")}}, [], "json")
@example({"timestamp": 10**400, "groups": {"a\n": "b"}}, ["card_id"], "json")
@given(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS)),
    st.lists(st.sampled_from(FIELDS), max_size=3, unique=True),
    st.sampled_from(["orjson", "json"]),
)
def test_arbitrary_json_in_every_field_is_parsed_or_dead_lettered(
    changes: dict[str, Any], dropped: list[str], how: str
) -> None:
    """No exception escapes; each record is a valid, bounded event or has a reason."""
    record = {k: v for k, v in {**BASE, **changes}.items() if k not in dropped}
    records = [rec(_encode(record, how)), rec(orjson.dumps(BASE), 1)]
    parsed, bad = parse_batch(Transaction, records)
    assert len(parsed) + len(bad) == 2 and parsed[-1][0].offset == 1
    for _, why in bad:
        field, _, reason = why.partition(": ")
        assert field and reason, why
    for _, tx in parsed:
        assert math.isfinite(tx.amount) and 0 <= tx.amount <= DEFAULT_LIMITS.max_amount
        assert DEFAULT_LIMITS.min_epoch <= tx.epoch < DEFAULT_LIMITS.max_epoch
        assert tx.epoch <= time.time() + DEFAULT_LIMITS.max_future_skew_s
        for ident in (tx.event_id, tx.card_id, tx.terminal_id, tx.customer_id or "x"):
            assert ident.isascii() and ident.isprintable()
        assert len(tx.groups) <= DEFAULT_LIMITS.max_map_keys
        assert len(tx.attributes) <= DEFAULT_LIMITS.max_map_keys
        for value in tx.attributes.values():
            assert not isinstance(value, float) or math.isfinite(value)


def test_labels_and_metric_points_broken_keys_carry_their_topic_in_the_bad_ones_order() -> None:
    """What each rejected label or metric point broke is counted under its topic's prefix
    (core.rejects), one set per bad record in the order of the bad records."""
    from riverwatch.core.events import Label, MetricPoint
    from riverwatch.core.rejects import records_key, tally, topic_of

    good = orjson.dumps({"event_id": "e", "label": 1, "timestamp": 0})
    values = [b"[1]", good, orjson.dumps({"event_id": "e", "label": 3, "timestamp": 0}), b"\xff"]
    broken: list[set[str]] = []
    parsed, bad = parse_batch(
        Label, [rec(v, i) for i, v in enumerate(values)], None, broken, "labels"
    )
    assert len(parsed) == 1 and [r.offset for r, _ in bad] == [0, 2, 3]
    assert len(broken) == 3 and broken[1] == {"labels.label|invalid|literal_error"}
    assert all(topic_of(k.split("|")[0]) == "labels" for keys in broken for k in keys)
    assert tally(broken, "labels")[records_key("labels")] == 3
    broken = []
    parse_batch(MetricPoint, [rec(b'{"series_id": "s", "timestamp": 0}')], None, broken, "metrics")
    assert broken == [{"metrics.value|missing|missing"}]
