"""The quality benchmark's exchanges with the running system (bench/quality.py): a day pushed
through Kafka and waited for, a retrain requested on ``control``, the scores read back."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pandas as pd
import redis
from confluent_kafka import Consumer, Producer

from riverwatch.core.events import now_utc
from riverwatch.core.kafka import produce_waiting
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.simulator import SimEvent
from tests.support.workers import labels_handled, poll


def push_day(p: Producer, names: Names, r: redis.Redis, evs: list[SimEvent], sent: int) -> int:
    """Produce one day's labels, wait until handled, then its transactions, wait until scored."""
    labels = [ev for ev in evs if ev.topic == "labels"]
    txs = [ev for ev in evs if ev.topic == "transactions"]
    for group, topic in ((labels, "labels"), (txs, "transactions")):
        for ev in group:
            produce_waiting(p, names.topic(topic), orjson.dumps(ev.payload), ev.key.encode())
        assert p.flush(60) == 0
        if topic == "labels":
            want = sent + len(labels)
            poll(lambda w=want: handled(r, names) >= w, 300, "labels handled", every=0.05)
        elif txs:
            last = [names.score(ev.payload["event_id"]) for ev in txs[-50:]]
            poll(
                lambda k=last: all(v is not None for v in r.mget(k)), 300, "day scored", every=0.05
            )
    return len(labels)


def handled(r: redis.Redis, names: Names) -> int:
    """Labels the learner has handled so far (tests.support.scoring.labels_handled)."""
    return labels_handled(r, names)


def retrain(settings: Settings, names: Names, p: Producer, now: float) -> dict[str, Any]:
    """Request a retrain as of event time ``now`` on the control topic; return its outcome."""
    request_id = uuid.uuid4().hex
    body = {
        "action": "retrain",
        "target": "batch",
        "request_id": request_id,
        "reason": "quality benchmark: start of the test week",
        "details": {"now": now},
        "timestamp": now_utc().isoformat(),
    }
    p.produce(names.topic("control"), orjson.dumps(body))
    assert p.flush(30) == 0
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"q-{request_id}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([names.topic("control")])
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            for m in c.consume(100, 0.5):
                msg = orjson.loads(m.value()) if m.error() is None else {}
                if msg.get("request_id") == request_id and msg.get("status") in ("done", "failed"):
                    print(
                        f"  retrain: {msg.get('status')} {msg.get('reason', '')} "
                        f"{orjson.dumps(msg.get('details', {})).decode()[:600]}",
                        flush=True,
                    )
                    answer: dict[str, Any] = msg
                    return answer
    finally:
        c.close()
    raise AssertionError("no retrain outcome within 900 s")


def retrain_when_free(settings: Settings, names: Names, p: Producer, now: float) -> None:
    """Request a retrain as of ``now``, again (every 5 s, 30 times at most) while another runs."""
    # One retrain runs at a time: one the monitor asked for may be running.
    for _ in range(30):
        answer = retrain(settings, names, p, now=now)
        if "running" not in answer.get("details", {}):
            break
        time.sleep(5)


def read_scores(settings: Settings, names: Names, wanted: set[str]) -> pd.DataFrame:
    """The scores the system produced for ``wanted`` events (from the scores topic)."""
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "q-reader",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([names.topic("scores")])
    rows: dict[str, dict] = {}
    deadline = time.monotonic() + 600
    while len(rows) < len(wanted) and time.monotonic() < deadline:
        for m in c.consume(5000, 0.5):
            if m.error() is None:
                s = orjson.loads(m.value())
                if s["event_id"] in wanted:
                    rows[s["event_id"]] = s
    c.close()
    return pd.DataFrame(rows.values())
