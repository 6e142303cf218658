"""A real scoring worker on hostile records written straight to Kafka (issue 13, findings 1, 5
and 9 on the worker side): each is dead-lettered with its field and reason, none stops it."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from tests.support.builders import T0
from tests.support.topics import consume_all
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration


def tx(i: int, **changes: object) -> bytes:
    record = {
        "event_id": f"e{i}",
        "timestamp": T0 + i,
        "card_id": "c1",
        "terminal_id": "t1",
        "amount": 10.0,
        **changes,
    }
    return json.dumps(record).encode()


def test_hostile_records_are_dead_lettered_and_the_scorer_goes_on(
    settings: Settings, tmp_path: Path
) -> None:
    bounded = settings.model_copy(update={"max_amount": 1000.0})
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    hostile = [
        tx(1, amount=1e308),  # twice on one card: the sum overflowed and the scorer died
        tx(2, amount=1e308),
        tx(3, timestamp="0001-01-01T00:00:00+14:00"),
        tx(4, card_id="c\r\n1"),
        tx(5, amount=True),
        tx(6, amount=5000.0),  # over this worker's RIVERWATCH_MAX_AMOUNT
    ]
    with running_worker(bounded, tmp_path / "worker.log", roles="scoring"):
        for value in [*hostile, tx(7)]:
            p.produce(names.topic("transactions"), value, b"c1")
        p.flush(10)
        poll(lambda: r.get(names.score("e7")), 60, "the score of e7")
        dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 6)]
    assert all(r.get(names.score(f"e{i}")) is None for i in range(1, 7))
    errors = {orjson.loads(d["value"])["event_id"]: d["error"] for d in dead}
    assert errors == {
        "e1": "amount: must be a finite number at most 1000 (RIVERWATCH_MAX_AMOUNT)",
        "e2": "amount: must be a finite number at most 1000 (RIVERWATCH_MAX_AMOUNT)",
        "e3": "timestamp: the time is before 1970-01-01T00:00:00Z (RIVERWATCH_MIN_EVENT_TIME)",
        "e4": "card_id: must be printable ASCII without control characters; found U+000D at "
        "position 1",
        "e5": "amount: Input should be a valid number",
        "e6": "amount: must be a finite number at most 1000 (RIVERWATCH_MAX_AMOUNT)",
    }
