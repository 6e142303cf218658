"""Data quality end to end: bad transactions written straight to the broker are dead-lettered
by the scorer, counted per field and reason in Redis, and the monitor raises a ``quality``
alert naming the field (real broker, Valkey and worker)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.simulator import SimConfig, TransactionSimulator
from tests.support.apiserver import running_api
from tests.support.simfeed import feed, read_alerts
from tests.support.workers import poll, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BAD = 150


def test_bad_records_sent_to_the_broker_raise_a_quality_alert_naming_the_field(
    settings: Settings, tmp_path: Path
) -> None:
    s = settings.model_copy(
        update={
            "label_delay_days": 1,
            "monitor_window_size": 150,
            "monitor_window_s": 0.0,
            "monitor_cooldown_s": 0.0,
            "monitor_warmup_days": 1.0,  # a 6-day world: a day's warm-up, 2 days' reference
            "monitor_reference_days": 2.0,
        }
    )
    names = Names(s.topic_prefix)
    r = redis.Redis.from_url(s.redis_url or "")
    sim = TransactionSimulator(
        SimConfig(seed=4, n_customers=300, n_terminals=600, n_days=6, label_delay_days=1)
    )
    day4 = sim.config.start.timestamp() + 4.5 * 86_400

    def after_day(day: int) -> None:
        if day != 4:
            return
        # the reference is complete: a producer now sends transactions without an amount
        p = Producer({"bootstrap.servers": s.kafka_bootstrap})
        for i in range(BAD):
            bad = {"event_id": f"bad-{i}", "timestamp": day4, "card_id": f"c{i}",
                   "terminal_id": "t1"}  # fmt: skip
            p.produce(names.topic("transactions"), orjson.dumps(bad), f"c{i}".encode())
        assert p.flush(30) == 0
        poll(
            lambda: int(r.hget(names.monitor("rejects"), "records") or 0) >= BAD,
            60,
            f"the scorer to dead-letter {BAD} transactions",
        )

    with running_worker(s, tmp_path / "w.log"):
        feed(s, sim, after_day)
    counters = {k.decode(): int(v) for k, v in r.hgetall(names.monitor("rejects")).items()}
    # the labels and metric points that passed are counted too (their rates' denominators)
    assert counters.pop("valid.labels") > 0 and counters.pop("valid.metrics") > 0
    assert counters == {"records": BAD, "amount|missing|missing": BAD}
    # no other quality alert: volume is judged on time windows only (these count windows,
    # filled partition by partition, raised "volume of all events fell" before)
    alerts = [a for a in read_alerts(s) if a["kind"] == "quality"]
    assert [a["subject"] for a in alerts] == ["amount:missing"], [a["message"] for a in alerts]
    d = alerts[0]["details"]
    assert d["field"] == "amount" and d["quality"] == "missing"
    assert d["reason"] == "rejected: missing" and d["reference_rate"] == 0
    assert d["count"] == BAD and d["rate"] == BAD / d["events"]
    assert "amount" in alerts[0]["message"] and "rejected: missing" in alerts[0]["message"]
    # the stored feature rows carry what the monitor judges the other fields on
    row = orjson.loads(r.get(names.feature_row(f"tx-4-{10}")) or b"{}")
    assert row["dq"]["cat"]["channel"] in ("online", "pos") and "p" in row["dq"]
    r.close()


def test_the_api_counts_what_rejected_transactions_broke(settings: Settings) -> None:
    """A 422 (or a partly rejected body) adds each rejected record to the counters, per
    field, kind and reason; an unknown field's name (user text) never becomes a key."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    ok = {"event_id": "q1", "timestamp": 0, "card_id": "c", "terminal_id": "t", "amount": 1.0}
    body = [
        ok,
        {**ok, "event_id": "q2", "amount": -1.0},
        {**ok, "event_id": "q3", "amount": 1e12},
        {k: v for k, v in ok.items() if k != "amount"} | {"x" * 60: 1},
        "not an object",
    ]
    with running_api(settings) as api:
        got = api.http.post("/v1/transactions", json=body, headers=api.auth("writer"))
        assert got.status_code == 202 and got.json()["rejected"] == 4
        counters = {k.decode(): int(v) for k, v in r.hgetall(names.monitor("rejects")).items()}
        assert counters == {
            "records": 4,
            "amount|out_of_range|greater_than_equal": 1,
            "amount|out_of_range|out_of_range": 1,
            "amount|missing|missing": 1,
            "(unknown field)|invalid|extra_forbidden": 1,
            "(record)|invalid|not_validated": 1,
        }
        got = api.http.post("/v1/transactions", json=body[1], headers=api.auth("writer"))
        assert got.status_code == 422
        assert int(r.hget(names.monitor("rejects"), "records") or 0) == 5
    r.close()
