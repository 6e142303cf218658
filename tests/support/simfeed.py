"""Feed the transaction simulator into a running worker, one simulated day phase at a time.

Each day goes in as two phases (that day's due labels, then its transactions); each phase is
waited for until the monitor has seen all of it, so every run sees the same order (as in
test_skew.py). Also: read every record of the ``alerts`` topic so far.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
import redis
from confluent_kafka import Consumer, Producer

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.simulator import TransactionSimulator
from tests.support.workers import poll


def feed(
    settings: Settings,
    sim: TransactionSimulator,
    after_day: Callable[[int], None] = lambda _day: None,
) -> dict[str, int]:
    """Send the simulator's events day by day; return how many labels and transactions went.

    ``after_day(day)`` runs once each day's events are all seen by the monitor.
    """
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    start = sim.config.start.timestamp()
    sent = {"labels": 0, "transactions": 0}
    for day, events in itertools.groupby(sim.events(), key=lambda e: int((e.at - start) // 86400)):
        todays = list(events)
        for topic in ("labels", "transactions"):
            phase = [ev for ev in todays if ev.topic == topic]
            for ev in phase:
                p.produce(names.topic(topic), orjson.dumps(ev.payload), ev.key.encode())
            assert p.flush(30) == 0
            sent[topic] += len(phase)
            field = b"labels" if topic == "labels" else b"scores"
            want = sent[topic]
            poll(
                lambda f=field, n=want: int(r.hget(names.monitor("stats"), f) or 0) >= n,
                60,
                f"the monitor to see {want} {topic}",
            )
        after_day(day)
    r.close()
    return sent


def read_alerts(settings: Settings) -> list[dict[str, Any]]:
    """Every record on the alerts topic so far (counted, never judged by watermarks)."""
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}reader",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([Names(settings.topic_prefix).topic("alerts")])
    out, idle = [], 0
    while idle < 6 or not out:
        msg = c.poll(0.5)
        if msg is None or msg.error():
            idle += 1
            if idle > 24:  # ~12 s: group join on Tansu takes ~3 s
                break
            continue
        idle = 0
        out.append(orjson.loads(msg.value()))
    c.close()
    return out
