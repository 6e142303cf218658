"""No record written straight to a topic stops a consumer (real broker and Valkey).

Producers may bypass the API. One worker runs every role; each consumed topic (transactions,
labels, scores, metrics, control, alerts) gets the same hostile records, all on one partition,
then a good record: the worker must stay up, handle the good record after them, and dead-letter
every record that is not a valid event with its reason (a valid one is handled).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import consumer
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from tests.support.builders import T0
from tests.support.scoring import counters
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration

BIG = 900_000  # near the broker's 1 MB record limit
HUGE_ID = 500_000


def good(topic: str, ident: str) -> dict[str, Any]:
    """A valid record of ``topic`` whose id is ``ident``."""
    t = T0 + 60
    return {
        "transactions": {"event_id": ident, "timestamp": t, "card_id": "c1",
                         "terminal_id": "t1", "amount": 10.0},
        "labels": {"event_id": ident, "label": 1, "timestamp": t},
        "scores": {"event_id": ident, "card_id": "c1", "timestamp": t, "score": 0.1,
                   "online_score": 0.1, "decision": "approve", "model_versions": {},
                   "latency_ms": 1.0, "scored_at": t},
        "metrics": {"series_id": ident, "timestamp": t, "value": 1.0},
        "control": {"action": "rollback", "target": "batch", "request_id": ident,
                    "timestamp": t},
        "alerts": {"alert_id": ident, "kind": "system", "severity": "info",
                   "subject": ident, "message": "m", "details": {}, "timestamp": t},
    }[topic]  # fmt: skip


ID = {"transactions": "event_id", "labels": "event_id", "scores": "event_id",
      "metrics": "series_id", "control": "request_id", "alerts": "alert_id"}  # fmt: skip
NAME = {"transactions": "card_id", "scores": "card_id", "control": "target",
        "alerts": "subject"}  # fmt: skip
NUM = {"transactions": "amount", "labels": "label", "scores": "score", "metrics": "value",
       "control": "details", "alerts": "details"}  # fmt: skip


def _num(topic: str, ident: str, literal: bytes) -> bytes:
    """A record whose number field (or a details entry) is the raw JSON ``literal``."""
    rec = good(topic, ident)
    field = NUM[topic]
    rec[field] = "@@" if field != "details" else {"x": "@@"}
    return orjson.dumps(rec).replace(b'"@@"', literal)


def _with(topic: str, ident: str, **change: Any) -> bytes:
    return orjson.dumps({**good(topic, ident), **change})


# name -> (topic, id) -> (key, value, headers)
Hostile = Callable[[str, str], tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]]
HOSTILE: dict[str, Hostile] = {
    "tombstone": lambda t, i: (b"k", None, None),
    "empty": lambda t, i: (b"k", b"", None),
    "key_100kb": lambda t, i: (b"k" * 100_000, orjson.dumps(good(t, i)), None),
    "binary_900kb": lambda t, i: (b"k", bytes(range(128, 256)) * (BIG // 128), None),
    "string_900kb": lambda t, i: (b"k", _with(t, i, junk="x" * BIG), None),
    "nested_100k": lambda t, i: (b"k", b"[" * 100_000 + b"]" * 100_000, None),
    "nested_in_field": lambda t, i: (b"k", _num(t, i, b"[" * 100_000 + b"]" * 100_000), None),
    "null": lambda t, i: (b"k", b"null", None),
    "number": lambda t, i: (b"k", b"42", None),
    "array": lambda t, i: (b"k", b"[1, 2]", None),
    "nan": lambda t, i: (b"k", _num(t, i, b"NaN"), None),
    "infinity": lambda t, i: (b"k", _num(t, i, b"Infinity"), None),
    "e400": lambda t, i: (b"k", _num(t, i, b"1e400"), None),
    "int_2_70": lambda t, i: (b"k", _num(t, i, str(2**70).encode()), None),
    "id_500kb": lambda t, i: (b"k", _with(t, i, **{ID[t]: "i" * HUGE_ID}), None),
    "reset_500kb": lambda t, i: (b"k", _with(t, i, **{ID[t]: "r" * HUGE_ID, "action": "reset"}
                                             if t == "control" else {ID[t]: "r" * HUGE_ID}), None),
    "retrain_now_x": lambda t, i: (b"k", _with(t, i, action="retrain", details={"now": "x"})
                                   if t == "control" else _with(t, i, details={"now": "x"}), None),
    "name_500kb": lambda t, i: (b"k", _with(t, i, **{NAME.get(t, ID[t]): "n" * HUGE_ID}), None),
    "extra_field": lambda t, i: (b"k", _with(t, i, extra_field=1), None),
    "ts_year_1": lambda t, i: (b"k", _with(t, i, timestamp="0001-01-01T00:00:00Z"), None),
    "ts_year_9999": lambda t, i: (b"k", _with(t, i, timestamp="9999-12-31T23:59:59Z"), None),
    "ts_epoch_1e20": lambda t, i: (b"k", _with(t, i, timestamp=1e20), None),
    "ts_2099": lambda t, i: (b"k", _with(t, i, timestamp="2099-06-01T00:00:00Z"), None),
    "num_1_5": lambda t, i: (b"k", _num(t, i, b"1.5"), None),
    "num_minus_1": lambda t, i: (b"k", _num(t, i, b"-1"), None),
    "duplicate_keys": lambda t, i: (
        b"k", orjson.dumps(good(t, i))[:-1] + b', "' + ID[t].encode() + b'": "dup-' +
        i.encode() + b'"}', None),
    "headers": lambda t, i: (b"k", orjson.dumps(good(t, i)), [("h", b"x" * 10_000)] * 3),
}  # fmt: skip
TOPICS = ("transactions", "labels", "scores", "metrics", "control", "alerts")
# What each consumer handles; the rest of HOSTILE it dead-letters. Every field is bounded:
# finite numbers, probabilities in [0, 1], bounded ids, texts, maps and lists, timestamps in
# the calendar window and, for the inputs and scores (event times), at most
# RIVERWATCH_MAX_FUTURE_SKEW_S ahead of the clock. The records riverwatch writes itself
# (scores, control, alerts) ignore unknown fields (a newer writer's), and a control request
# whose details hold what the trainer cannot use is answered (failed), not dead-lettered.
VALID = {"key_100kb", "duplicate_keys", "headers"}
LAX = {"retrain_now_x", "string_900kb", "extra_field"}
HANDLED = {
    "transactions": VALID | {"num_1_5"},
    "labels": VALID,
    "metrics": VALID | {"num_1_5", "num_minus_1"},
    "scores": VALID | LAX,
    "control": VALID | LAX | {"num_1_5", "num_minus_1", "ts_2099"},  # no clock: wall times
    "alerts": VALID | LAX | {"num_1_5", "num_minus_1", "ts_2099"},
}


def produce_all(settings: Settings, tag: str) -> None:
    """Every hostile record, then a good one (id ``ok``), on partition 0 of every topic; each
    record's key is its name (a dead letter keeps the key), whatever HOSTILE gives."""
    names = Names(settings.topic_prefix)
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap, "message.max.bytes": 1_000_000})
    for topic in TOPICS:
        for name, make in HOSTILE.items():
            _, value, headers = make(topic, f"{tag}-{name}")
            key = name.encode() + (b"|" + b"k" * 100_000 if name == "key_100kb" else b"")
            p.produce(names.topic(topic), value, key, partition=0, headers=headers)
            assert p.flush(30) == 0, (topic, name)
        p.produce(names.topic(topic), orjson.dumps(good(topic, f"{tag}-ok")), b"ok", partition=0)
    assert p.flush(10) == 0


class Reader:
    """``deadletter`` and the answers on ``control``, read from the start."""

    def __init__(self, settings: Settings):
        self.names = names = Names(settings.topic_prefix)
        group = f"{settings.topic_prefix}r-{uuid.uuid4().hex[:6]}"
        self.c: Consumer = consumer(kafka_config(settings), group)
        parts = [(t, p) for t in ("control", "deadletter") for p in range(settings.partitions)]
        self.c.assign([TopicPartition(names.topic(t), p, OFFSET_BEGINNING) for t, p in parts])
        self.dead: dict[tuple[str, str], dict[str, Any]] = {}  # (topic, record name) -> letter
        self.answered: set[str] = set()  # request ids answered on ``control``

    def read(self) -> None:
        for m in self.c.consume(500, 0.2):
            topic = (m.topic() or "").removeprefix(self.names.prefix)
            try:
                v = orjson.loads(m.value() or b"")
            except orjson.JSONDecodeError:
                continue
            if not isinstance(v, dict):
                continue
            if topic == "deadletter":
                origin = v["origin_topic"].removeprefix(self.names.prefix)
                self.dead[(origin, (v["key"] or "").split("|")[0])] = v
            elif v.get("status") in ("done", "failed"):
                self.answered.add(str(v.get("request_id")))


def test_hostile_records_never_stop_a_consumer(settings: Settings, tmp_path: Path) -> None:
    """Each consumer goes past every hostile record, handles the valid ones and the good record
    after them, and dead-letters the others (with the reason and the origin)."""
    names, tag = Names(settings.topic_prefix), uuid.uuid4().hex[:6]
    r = redis.Redis.from_url(settings.redis_url or "")
    reader = Reader(settings)
    want_dead = {(t, n) for t in TOPICS for n in HOSTILE if n not in HANDLED[t]}
    with running_worker(settings, tmp_path / "w.log") as worker:
        produce_all(settings, tag)
        ok = f"{tag}-ok"

        def missing() -> list[object]:
            """What is not handled yet (nothing once all is)."""
            reader.read()
            c = counters(r, names)
            stored = b"".join(f[b"alert"] for _, f in r.xrange(names.alert_stream()))
            checks = {
                "dead letters": sorted(want_dead - reader.dead.keys()),
                "transaction": r.get(names.score(ok)) is None,
                "labels": c.get("valid.labels") != len(HANDLED["labels"]) + 1,
                "metrics": c.get("valid.metrics") != len(HANDLED["metrics"]) + 1,
                "control": ok not in reader.answered,
                "alert": f'"alert_id":"{ok}"'.encode() not in stored,
                "scores": int(r.hget(names.monitor("stats"), "scores") or 0) < len(HOSTILE) + 1,
            }
            return [(k, v) for k, v in checks.items() if v]

        try:
            poll(lambda: not missing(), 60, "every record handled or dead-lettered", every=0.2)
        except AssertionError:
            assert missing() == []
        assert worker.poll() is None, "the worker died"
    assert reader.dead.keys() == want_dead
    for (topic, name), letter in reader.dead.items():
        assert letter["error"] and letter["partition"] == 0, (topic, name, letter["error"])
    # a handled record is handled under its id (the last of duplicate keys)
    ids = [("dup-" if n == "duplicate_keys" else "") + f"{tag}-{n}" for n in sorted(VALID)]
    assert [i for i in ids if r.get(names.score(i)) is None] == []
    assert {("dup-" if n == "duplicate_keys" else "") + f"{tag}-{n}"
            for n in HANDLED["control"]} <= reader.answered  # fmt: skip
    r.close()


# aiokafka's own producer encodes header keys with ``str.encode``: a ``str`` whose ``encode``
# answers bytes that are not UTF-8 writes the header key a hostile client could (the pure-Python
# record builder, forced by AIOKAFKA_NO_EXTENSIONS).
_BAD_HEADER = """
import asyncio, sys
from aiokafka import AIOKafkaProducer
class Key(str):
    def encode(self, *args, **kwargs):
        return b"\\xff\\xfe"
async def main(bootstrap, topic, value):
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        await (await p.send(topic, value.encode(), partition=0, headers=[(Key("h"), b"v")]))
    finally:
        await p.stop()
asyncio.run(main(*sys.argv[1:]))
"""


def send_bad_header(settings: Settings, topic: str, value: bytes) -> None:
    """``value`` on partition 0 of the bare ``topic`` with a header key that is not UTF-8."""
    argv = [sys.executable, "-c", _BAD_HEADER, settings.kafka_bootstrap]
    argv += [Names(settings.topic_prefix).topic(topic), value.decode()]
    env = dict(os.environ, AIOKAFKA_NO_EXTENSIONS="1")
    subprocess.run(argv, env=env, check=True, timeout=60)


def test_a_header_key_that_is_not_utf8_does_not_stop_a_faust_consumer(
    settings: Settings, tmp_path: Path
) -> None:
    """aiokafka's record reader decodes every header key as UTF-8 and raises inside faust's
    fetcher, which would stop the worker at that record, and again after every restart (its
    offset never committed); the worker patches the reader at start-up
    (streams/kafka_headers.py), so the label is read on and learned."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    send_bad_header(settings, "labels", orjson.dumps(good("labels", "e1")))
    log = tmp_path / "w.log"
    with running_worker(settings, log, roles="learning") as worker:
        poll(lambda: counters(r, names).get("valid.labels") == 1, 30, "the label learned")
        assert worker.poll() is None
    r.close()
    # the operator is told, with the key as read (its bytes ff fe as the 8 characters \xff\xfe)
    told = "labels[0]@0: a header key is not UTF-8, read as ['\\\\xff\\\\xfe']"
    assert told in log.read_text()


def test_a_header_key_that_is_not_utf8_does_not_stop_the_scoring_loop(
    settings: Settings, tmp_path: Path
) -> None:
    """librdkafka hands the scoring loop the record without decoding its headers."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    send_bad_header(settings, "transactions", orjson.dumps(good("transactions", "e1")))
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    p.produce(names.topic("transactions"), orjson.dumps(good("transactions", "e2")), partition=0)
    assert p.flush(10) == 0
    with running_worker(settings, tmp_path / "w.log", roles="scoring") as worker:
        poll(lambda: r.get(names.score("e2")) and r.get(names.score("e1")), 30, "both scored")
        assert worker.poll() is None
    r.close()
