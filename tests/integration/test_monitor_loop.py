"""The monitor's batch loop over ``scores`` and ``labels`` (streams/monitor/agents.py), on the
real broker and Valkey, in-process: its offsets are committed only once its outputs (here a
control request left in the outbox by a monitor before) are acknowledged; a request the broker
did not take is sent again and leaves the outbox once it does, while the records of the batch
consumed again are not monitored twice; a restarted loop goes on from the commit, every record
counted once; a malformed score is dead-lettered with its reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from riverwatch.context import Context
from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import admin, producer
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.monitor.agents import MonitorHandler
from riverwatch.streams.monitor.runner import Monitor
from tests.support.scoring import committed as committed_by
from tests.support.scoring import started
from tests.support.topics import consume_all
from tests.support.workers import poll

pytestmark = pytest.mark.integration
T = "2026-01-01T00:00:00+00:00"


def score(i: int) -> bytes:
    return orjson.dumps({"event_id": f"e{i}", "card_id": "c1", "timestamp": T, "score": 0.1,
                         "online_score": 0.1, "decision": "approve", "model_versions": {},
                         "latency_ms": 1.0, "scored_at": T})  # fmt: skip


@contextmanager
def monitor_loop(settings: Settings, r: redis.Redis, prod: Producer) -> Iterator[BatchLoop]:
    """The monitor's loop as the worker builds it, in a thread; fails the test if it crashes."""
    ctx = Context.from_settings(settings)
    loop = MonitorHandler(ctx, lambda: Monitor(ctx, r, "w1"), prod, "w1").loop(ctx)
    loop.flush_timeout_s = 2.0
    with started(loop):
        yield loop


def committed(settings: Settings, topic: str) -> int:
    """Records the monitor's group committed over ``topic``."""
    return committed_by(settings, topic, "monitor")


def seen(r: redis.Redis, names: Names, field: bytes) -> int:
    return int(r.hget(names.monitor("stats"), field) or 0)


def test_the_monitor_commits_after_its_outputs_are_acknowledged_and_resumes_from_there(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    t_scores, t_labels, t_control = (names.topic(t) for t in ("scores", "labels", "control"))
    request = orjson.dumps({"request_id": "req-1", "action": "retrain"})
    r.hset(names.monitor("outbox"), "req-1", request)  # decided, never acknowledged
    client = admin(kafka_config(settings))
    client.delete_topics([t_control])[t_control].result(15)  # the broker cannot take it
    poll(lambda: t_control not in client.list_topics(timeout=10).topics, 30, "control deleted")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i in range(5):
        p.produce(t_scores, score(i), b"c1")
    p.produce(t_scores, b'{"event_id": "bad"}', b"c1")  # malformed: dead-lettered
    label = {"event_id": "e0", "label": 0, "timestamp": T}
    p.produce(t_labels, orjson.dumps(label), b"e0")
    p.flush(10)
    # A producer that never creates a topic by itself: the request cannot be delivered.
    prod = producer(
        kafka_config(settings), **{"allow.auto.create.topics": False, "message.timeout.ms": 1500}
    )
    with monitor_loop(settings, r, prod) as loop:
        poll(lambda: seen(r, names, b"scores") >= 6 and seen(r, names, b"labels") >= 1, 60,
             "the monitor to see every score and label")  # fmt: skip
        time.sleep(4)  # past the flush timeout: the batch is consumed again, not committed
        assert committed(settings, t_scores) == 0 and committed(settings, t_labels) == 0
        assert r.hget(names.monitor("outbox"), "req-1") == request
        assert loop.error is None
        deadline = time.monotonic() + 30
        while True:  # a deleted topic may take a moment to be created again
            try:
                client.create_topics([NewTopic(t_control, 1, 1)])[t_control].result(15)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        poll(lambda: committed(settings, t_scores) == 6, 60, "the scores committed")
        poll(lambda: committed(settings, t_labels) == 1, 30, "the label committed")
        assert r.hget(names.monitor("outbox"), "req-1") is None  # acknowledged: out
        # consumed again while the request was refused, monitored once
        assert seen(r, names, b"scores") == 6 and seen(r, names, b"labels") == 1
    sent = [orjson.loads(v) for v in consume_all(settings, t_control, 1)]
    assert {c["request_id"] for c in sent} == {"req-1"}
    dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 1)]
    bad = [d for d in dead if '"bad"' in d["value"]]  # once per time its batch was handled
    assert bad and {(d["origin_topic"], d["offset"]) for d in bad} == {(t_scores, 5)}
    assert all("card_id" in d["error"] for d in bad), bad[0]["error"]  # the reason
    scores_seen = seen(r, names, b"scores")

    # Restarted: goes on from the commit; only the new score is read.
    p.produce(t_scores, score(9), b"c1")
    p.flush(10)
    with monitor_loop(settings, r, producer(kafka_config(settings))):
        poll(lambda: committed(settings, t_scores) == 7, 60, "the new score committed")
    assert seen(r, names, b"scores") == scores_seen + 1


def test_a_first_start_in_the_monitor_group_goes_on_where_the_faust_agents_left_off(
    settings: Settings,
) -> None:
    """Upgrading from the faust agents: the new group ``monitor`` has committed nothing, so
    each partition starts at the worker group's committed offset (streams/inherit.py), not
    at the start of the topic (every retained score counted again) nor at its end."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    t_scores = names.topic("scores")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i in range(10):
        p.produce(t_scores, score(i), b"c1", partition=0)
    p.flush(10)
    old = names.group(settings.consumer_group, "worker")  # as streams.app names faust's
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": old})
    try:  # what the faust agents had committed: the first 7 monitored
        c.commit(offsets=[TopicPartition(t_scores, 0, 7)], asynchronous=False)
    finally:
        c.close()
    ctx = Context.from_settings(settings)
    loop = MonitorHandler(ctx, lambda: Monitor(ctx, r, "w1"), p, "w1").loop(ctx)
    loop.inherit_from = old
    with started(loop):
        poll(lambda: committed(settings, t_scores) == 10, 60, "the scores committed")
    assert seen(r, names, b"scores") == 3  # e7, e8, e9: nothing before, nothing skipped
