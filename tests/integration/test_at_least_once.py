"""The scoring loop's at-least-once delivery, on the real broker and Valkey, in-process.

A record that makes the handler raise is isolated and dead-lettered while the rest of its batch
is scored; outputs the broker did not acknowledge are never committed, and are produced again
once it does, each event counted once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import orjson
import pytest
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic
from prometheus_client import REGISTRY

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import admin, producer
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.streams.records import Handler, Out, Record
from tests.support.builders import card_count, tx
from tests.support.scoring import committed, running_loop, scorer
from tests.support.topics import consume_all
from tests.support.workers import poll

pytestmark = pytest.mark.integration


def retries(reason: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "riverwatch_batch_retries_total", {"stage": "scorer", "reason": reason}
        )
        or 0.0
    )


def test_poison_records_are_dead_lettered_and_the_rest_of_the_batch_scored_once(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    real = scorer(settings, r)
    calls: list[int] = []

    def handler(records: list[Record]) -> list[Out]:
        # Valid transactions that make the handler raise: poison as far as the scorer knows.
        calls.append(len(records))
        if any(b'"p' in (rec.value or b"") for rec in records):
            raise RuntimeError("cannot score a poison record")
        return real.process(records)

    good = [tx(i, card=f"c{i % 3}") for i in range(30)]
    poison = [tx(i, card="cp").replace(b'"e', b'"p', 1) for i in range(100, 103)]
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    batch = good[:10] + poison[:1] + good[10:20] + poison[1:] + good[20:]
    for value in batch:  # one card key: one partition, the whole batch in one consume
        p.produce(names.topic("transactions"), value, b"k")
    p.flush(10)
    with running_loop(settings, handler, producer(kafka_config(settings))) as loop:
        poll(lambda: all(r.get(names.score(f"e{i}")) for i in range(30)), 60, "30 scores")
        dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 3)]
        # Still running: a later good record is scored.
        p.produce(names.topic("transactions"), tx(30, card="c0"), b"k")
        p.flush(10)
        poll(lambda: r.get(names.score("e30")), 30, "the score of e30")
        assert loop.error is None and loop._thread is not None and loop._thread.is_alive()
        poll(lambda: committed(settings, names.topic("transactions")) == 34, 30, "34 committed")
    assert max(calls) > 1  # the poison came in a batch with good records
    assert sorted(d["value"] for d in dead) == sorted(v.decode() for v in poison)
    for d in dead:
        assert d["error"] == "RuntimeError: cannot score a poison record"
        assert d["origin_topic"] == names.topic("transactions")
        assert batch[d["offset"]].decode() == d["value"]  # the origin offset is the record's
    with pytest.raises(AssertionError, match="timed out"):
        consume_all(settings, names.topic("deadletter"), 4, timeout=3)
    scores = [orjson.loads(v)["event_id"] for v in consume_all(settings, names.topic("scores"), 31)]
    assert sorted(scores) == sorted(f"e{i}" for i in range(31))  # each exactly once
    assert sum(card_count(r, names, f"c{i}") for i in range(3)) == 31
    assert card_count(r, names, "cp") == 0


def test_unacknowledged_outputs_are_not_committed_and_are_produced_once_the_broker_takes_them(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    real = scorer(settings, r)
    late = f"{settings.topic_prefix}late-{uuid.uuid4().hex[:6]}"  # does not exist yet

    calls: list[int] = []

    def to_late(fn: Callable[[list[Record]], list[Out]]) -> Handler:
        def handler(records: list[Record]) -> list[Out]:
            calls.append(len(records))
            return [Out(late, o.key, o.value) for o in fn(records)]

        return handler

    # A producer that never creates a topic by itself: its outputs cannot be delivered.
    prod = producer(
        kafka_config(settings), **{"allow.auto.create.topics": False, "message.timeout.ms": 1500}
    )
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i in range(5):
        p.produce(names.topic("transactions"), tx(i), b"c1")
    p.flush(10)
    before = retries("delivery")
    with running_loop(settings, to_late(real.process), prod, flush_timeout_s=2.0) as loop:

        def alive() -> bool:
            return loop._thread is not None and loop._thread.is_alive()

        poll(lambda: len(calls) >= 3 or not alive(), 60, "the batch to be retried")
        assert alive(), "the loop died on a delivery failure"
        assert committed(settings, names.topic("transactions")) == 0
        assert retries("delivery") >= before + 2
        client = admin(kafka_config(settings))  # kept alive until its future resolves
        client.create_topics([NewTopic(late, 1, 1)])[late].result(15)
        poll(lambda: committed(settings, names.topic("transactions")) == 5, 60, "5 committed")
    outs = [orjson.loads(v)["event_id"] for v in consume_all(settings, late, 5)]
    assert set(outs) == {f"e{i}" for i in range(5)}
    assert card_count(r, names, "c1") == 5  # every retry re-delivered, none counted twice
    assert json.loads(r.get(names.score("e4")) or b"{}")["event_id"] == "e4"


def test_a_record_near_the_size_limit_is_dead_lettered_in_a_dead_letter_that_fits(
    settings: Settings,
) -> None:
    """900 KB of bytes that are not UTF-8: quoted whole in its dead letter they would be 2.7 MB,
    which the broker refuses for good (the loop crashed on it, and again on every restart)."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    big = b"\xff" * 900_000
    p.produce(names.topic("transactions"), big, b"k")
    p.produce(names.topic("transactions"), tx(1, card="c1"), b"k")
    assert p.flush(10) == 0
    with running_loop(settings, scorer(settings, r).process, producer(kafka_config(settings))):
        poll(lambda: r.get(names.score("e1")), 60, "the score of the record after it")
        poll(lambda: committed(settings, names.topic("transactions")) == 2, 30, "2 committed")
    (dead,) = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 1)]
    assert dead["offset"] == 0 and dead["origin_topic"] == names.topic("transactions")
    assert dead["value_bytes"] == len(big) and dead["truncated"] is True
    assert dead["value"] == "\ufffd" * 64 * 1024
    assert dead["error"].startswith("(record): Invalid JSON")


def test_an_output_the_producer_refuses_outright_is_retried_not_a_crash(
    settings: Settings,
) -> None:
    """librdkafka refuses a message over its size limit in produce() itself (not in a delivery
    callback): the batch is retried like an unacknowledged one, and nothing is committed."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    real = scorer(settings, r)
    oversize = [True]
    calls: list[int] = []

    def handler(records: list[Record]) -> list[Out]:
        calls.append(len(records))
        outs = real.process(records)
        if oversize[0]:
            outs.append(Out(names.topic("scores"), b"k", b"x" * 2_000_000))
        return outs

    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i in range(5):
        p.produce(names.topic("transactions"), tx(i), b"c1")
    p.flush(10)
    before = retries("delivery")
    with running_loop(settings, handler, producer(kafka_config(settings))) as loop:
        poll(lambda: len(calls) >= 3 or loop.error is not None, 60, "the batch to be retried")
        assert loop._thread is not None and loop._thread.is_alive(), "the loop died"
        assert retries("delivery") >= before + 2
        assert committed(settings, names.topic("transactions")) == 0
        oversize[0] = False
        poll(lambda: committed(settings, names.topic("transactions")) == 5, 60, "5 committed")
    assert card_count(r, names, "c1") == 5  # retried, none counted twice
