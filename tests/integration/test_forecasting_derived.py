"""The scorers' derived per-minute series, aggregated across scorers in the real Valkey."""

from __future__ import annotations

import orjson
import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.forecast.messages import AMOUNT_PER_MIN, FRAUD_ALERT_RATE, TX_PER_MIN, iso
from riverwatch.streams.derived import DerivedSeries
from riverwatch.streams.records import Out

pytestmark = pytest.mark.integration

M0 = 1_767_225_600  # a minute boundary


def emitted(outs: list[Out]) -> dict[tuple[str, str], float]:
    """(series_id, timestamp) -> value of the metric points produced."""
    out = {}
    for o in outs:
        body = orjson.loads(o.value)
        assert o.key == body["series_id"].encode() and o.topic.endswith("metrics")
        out[(body["series_id"], body["timestamp"])] = body["value"]
    return out


def test_minutes_close_once_with_exact_totals_across_scorers(settings: Settings) -> None:
    settings = settings.model_copy(update={"derived_grace_s": 5.0})
    r = redis_client(redis_config(settings))
    ctx = Context.from_settings(settings)
    a, b = DerivedSeries(ctx, r, flush_s=0), DerivedSeries(ctx, r, flush_s=0)
    # Two scorers share minute 0; neither has passed its end by the grace yet.
    assert a.points([(M0 + 1, 10.0, False), (M0 + 30, 20.0, True)]) == []
    assert b.points([(M0 + 50, 5.0, False), (M0 + 62, 1.0, False)]) == []
    # Scorer b moves past minute 0's end + grace: it alone emits minute 0, complete.
    got = emitted(b.points([(M0 + 66, 2.0, False)]))
    t0 = iso(M0)
    assert got == {
        (TX_PER_MIN, t0): 3.0,
        (AMOUNT_PER_MIN, t0): 35.0,
        (FRAUD_ALERT_RATE, t0): pytest.approx(1 / 3),
    }
    # A late event for the closed minute is counted, not emitted again.
    assert a.points([(M0 + 59, 100.0, True)]) == []
    # A jump over an empty minute: minute 1 (2 events); minute 2 had none, so nothing for it.
    got = emitted(a.points([(M0 + 190, 7.0, False)]))
    assert got[(TX_PER_MIN, iso(M0 + 60))] == 2.0 and got[(AMOUNT_PER_MIN, iso(M0 + 60))] == 3.0
    assert {ts for _, ts in got} == {iso(M0 + 60)}
    assert (TX_PER_MIN, iso(M0 + 180)) not in got  # minute 3 is still open
    meta = r.hgetall(Names(settings.topic_prefix).derived("meta"))
    assert int(meta[b"late"]) == 1 and int(meta[b"closed"]) == M0 // 60 + 3
    assert a.points([]) == []


def test_totals_are_flushed_at_most_once_per_interval_and_a_gap_emits_nothing(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"derived_grace_s": 0.0})
    r = redis_client(redis_config(settings))
    totals = Names(settings.topic_prefix).derived("totals")
    now = [100.0]
    d = DerivedSeries(Context.from_settings(settings), r, flush_s=1.0, clock=lambda: now[0])
    assert d.points([(M0 + 1, 1.0, False)]) == []  # the first flush: minute 0 still open
    assert r.hget(totals, f"n:{M0 // 60}") == b"1"
    # Within the second: aggregated in memory, nothing written, nothing emitted.
    for i in range(50):
        now[0] += 0.01
        assert d.points([(M0 + 2 + i, 1.0, False)]) == []
    assert r.hget(totals, f"n:{M0 // 60}") == b"1"
    # A backfill jumping 3 hours of event time with events in two minutes only.
    now[0] += 0.6
    got = emitted(d.points([(M0 + 3 * 3600 + 5, 2.0, True), (M0 + 3 * 3600 + 70, 1.0, False)]))
    assert got == {
        (TX_PER_MIN, iso(M0)): 51.0,
        (AMOUNT_PER_MIN, iso(M0)): 51.0,
        (FRAUD_ALERT_RATE, iso(M0)): 0.0,
        (TX_PER_MIN, iso(M0 + 3 * 3600)): 1.0,
        (AMOUNT_PER_MIN, iso(M0 + 3 * 3600)): 2.0,
        (FRAUD_ALERT_RATE, iso(M0 + 3 * 3600)): 1.0,
    }  # 2 minutes with events, not the 181 event-time minutes that passed
    assert d.points([], force=True) == []
