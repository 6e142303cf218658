"""The score records the scorer produces and stores, as bytes: each one a valid
``core.outputs.Score`` whose ``timestamp`` is the event's time written as ``isoformat()`` of
its UTC datetime (orjson writes the datetime itself: models.scoring.score_record), whatever
form the producer sent the time in, and the stored copy equal to the produced one."""

from __future__ import annotations

import time

import orjson
import pytest

from riverwatch.context_parts import redis_config
from riverwatch.core.events import Transaction, parse_event
from riverwatch.core.names import Names
from riverwatch.core.outputs import Score
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.streams.records import Record
from tests.support.scoring import scorer

pytestmark = pytest.mark.integration


def test_score_timestamps_are_the_events_utc_isoformat(settings: Settings) -> None:
    now = time.time()
    whole = int(now) - 3600  # a time with no fraction: isoformat() writes no microseconds
    times: list[object] = [
        now - 60,  # epoch seconds with a fraction
        whole,
        int((now - 120) * 1000),  # epoch milliseconds
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole - 60)),  # naive: UTC
        time.strftime("%Y-%m-%dT%H:%M:%S.123456Z", time.gmtime(whole - 90)),
        time.strftime("%Y-%m-%dT%H:%M:%S+05:30", time.gmtime(whole - 100 + 5.5 * 3600)),
    ]
    topic = Names(settings.topic_prefix).topic("transactions")
    bodies = [
        orjson.dumps(
            {
                "event_id": f"w{i}",
                "timestamp": t,
                "card_id": f"c{i}",
                "terminal_id": f"t{i}",
                "amount": 12.5,
            }
        )
        for i, t in enumerate(times)
    ]
    records = [Record(topic, 0, i, b"k", b, int(now * 1000)) for i, b in enumerate(bodies)]
    r = redis_client(redis_config(settings))
    sc = scorer(settings, r)
    outs = [o for o in sc.process(records) if o.topic == sc.t_scores]
    assert len(outs) == len(times)
    limits = sc.limits
    for body, out in zip(bodies, outs, strict=True):
        tx = parse_event(Transaction, body, limits, now)
        sent = orjson.loads(out.value)
        assert sent["timestamp"] == tx.timestamp.isoformat(), body
        assert Score.model_validate_json(out.value).timestamp == tx.timestamp
        stored = r.get(Names(settings.topic_prefix).score(tx.event_id))
        assert stored is not None and orjson.loads(stored) == sent
    r.close()
