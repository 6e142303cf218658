"""Readers of the real broker's topics: ``Topics`` (wait for a record matching fields),
``consume_all`` (read N records from the start), ``ids_on_topic``, ``unscored``, and ``ask``
(a request on ``control`` and its answer).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import orjson
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from riverwatch.context_parts import kafka_config
from riverwatch.core.events import now_utc
from riverwatch.core.kafka import consumer
from riverwatch.core.names import Names
from riverwatch.core.outputs import Control
from riverwatch.core.settings import Settings
from tests.support.workers import poll


class Topics:
    """Reads ``control``, ``alerts`` and ``deadletter`` from the start, keeping everything."""

    def __init__(self, settings: Settings):
        self.names = Names(settings.topic_prefix)
        self.c: Consumer = consumer(
            kafka_config(settings), f"{settings.topic_prefix}check-{uuid.uuid4().hex[:6]}"
        )
        self.c.assign(
            [
                TopicPartition(self.names.topic(t), p, OFFSET_BEGINNING)
                for t in ("control", "alerts", "deadletter")
                for p in range(settings.partitions)
            ]
        )
        self.seen: dict[str, list[dict[str, Any]]] = {"control": [], "alerts": [], "deadletter": []}

    def wait(self, topic: str, match: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """The first record of ``topic`` whose fields include ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.seen[topic]:
                if all(rec.get(k) == v for k, v in match.items()):
                    return rec
            assert time.monotonic() < deadline, f"no {match} on {topic} after {timeout:.0f} s"
            for m in self.c.consume(100, 0.2):
                if m.error() is None and m.value():
                    t = (m.topic() or "").removeprefix(self.names.prefix)
                    self.seen[t].append(orjson.loads(m.value() or b"{}"))


def control(action: str, target: str = "batch", **details: Any) -> Control:
    """A control request with a fresh request_id."""
    return Control(
        action=action,  # type: ignore[arg-type]
        target=target,
        request_id=uuid.uuid4().hex,
        reason="test",
        details=details,
        timestamp=now_utc(),
    )


def ask(settings: Settings, action: str, target: str = "batch", **details: Any) -> str:
    """Produce a control request as any client would; return its request_id."""
    req = control(action, target, **details)
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    p.produce(Names(settings.topic_prefix).topic("control"), req.model_dump_json().encode())
    assert p.flush(10) == 0
    return req.request_id


def consume_all(settings: Settings, topic: str, want: int, timeout: float = 30) -> list[bytes]:
    """Read ``want`` records of ``topic`` from the start (count them: never trust watermarks)."""
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{topic}-reader-{uuid.uuid4().hex[:8]}",  # from the start, each call
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic])
    got: list[bytes] = []

    def more() -> bool:
        got.extend(m.value() for m in c.consume(100, 0.2) if m.error() is None)
        return len(got) >= want

    try:
        poll(more, timeout, f"{want} records on {topic}", every=0)
    finally:
        c.close()
    return got


def unscored(r: redis.Redis, names: Names, ids: list[str]) -> list[str]:
    """The ids among ``ids`` with no score in Redis."""
    out: list[str] = []
    for k in range(0, len(ids), 2000):
        chunk = ids[k : k + 2000]
        got = r.mget([names.score(e) for e in chunk])
        out += [e for e, v in zip(chunk, got, strict=True) if v is None]
    return out


def ids_on_topic(
    settings: Settings, want: set[str], topic: str = "scores", timeout: float = 120
) -> Counter[str]:
    """How often each event id is on ``topic``, read until every id of ``want`` was seen."""
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([Names(settings.topic_prefix).topic(topic)])
    seen: Counter[str] = Counter()

    def all_seen() -> bool:
        for m in c.consume(2000, 0.2):
            if m.error() is None:
                seen[orjson.loads(m.value() or b"{}")["event_id"]] += 1
        return want <= seen.keys()

    try:
        poll(all_seen, timeout, f"every event id on {topic}", every=0)
    finally:
        c.close()
    return seen
