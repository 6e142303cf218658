"""A label that arrives before its transaction is scored is not lost (real broker and Valkey):
it waits for its feature row and is learned once the row appears; a second label of the event
meanwhile is a duplicate; one whose row never comes counts as unknown after the grace period; no
more than ``early_labels_max`` wait; one whose row turns out unreadable is dead-lettered with its
original origin, by the worker's timer as by its agent."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.context import Context
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.models.features import FeatureSpec
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.early import park, unpark
from riverwatch.streams.learning import Learner
from riverwatch.streams.records import Record
from tests.integration.test_learner_poison import (
    POISON,
    expected_model,
    label,
    learned,
    store_rows,
    weights,
)
from tests.support.topics import consume_all
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration


def stats(r: redis.Redis, names: Names) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(names.learner_stats()).items()}


def waiting(r: redis.Redis, names: Names) -> list[str]:
    return sorted(k.decode() for k in r.hkeys(names.learner_early()))


def make_learner(settings: Settings, r: redis.Redis, **update: object) -> Learner:
    settings = settings.model_copy(update={"snapshot_every_s": 3600.0, **update})
    names = Names(settings.topic_prefix)
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    return Learner(
        Context.from_settings(settings),
        r,
        RedisFeatureStore(r, names, spec.retention_s),
        SnapshotStore(r, names),
        "w1",
    )


def records(names: Names, ids: list[int], first_offset: int = 0) -> list[Record]:
    t = names.topic("labels")
    return [Record(t, 0, first_offset + k, f"e{i}".encode(), label(i)) for k, i in enumerate(ids)]


def retry(learner: Learner) -> None:
    learner.retried_at = -float("inf")  # due now
    recs, parked = learner.parked_due()
    learner.process(recs, parked)


def test_early_labels_wait_for_their_rows_then_are_learned_in_order(settings: Settings) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    learner = make_learner(settings, r)
    good = [i for i in range(12) if f"e{i}" not in POISON]  # 0-3, 5-8, 10, 11
    store_rows(r, names, range(4))
    learner.process(records(names, good))
    assert stats(r, names) == {"learned": 4, "unknown": 0, "duplicate": 0, "parked": 6}
    assert waiting(r, names) == sorted(f"e{i}" for i in good[4:])
    # a second label of a waiting event is a duplicate, not a second wait
    learner.process(records(names, [7], first_offset=20))
    assert stats(r, names)["duplicate"] == 1
    # read when due, then not again within RETRY_S
    assert len(learner.parked_due()[0]) == 6
    assert learner.parked_due() == ([], {})

    store_rows(r, names, range(4, 9))  # the transactions 5-8 are scored
    retry(learner)
    assert stats(r, names) == {"learned": 8, "unknown": 0, "duplicate": 1, "parked": 6}
    assert waiting(r, names) == ["e10", "e11"]
    # learned in the order the labels were consumed: 0-3, then 5-8
    assert weights(learner.model) == pytest.approx(weights(expected_model(good[:8])), abs=1e-12)

    # e10 waited past the grace period, e11 not: e10 counts as unknown and leaves
    recs, _ = unpark(names.topic("labels"), r.hgetall(names.learner_early()))
    r.hset(names.learner_early(), "e10", park(recs[0], time.time() - 601))
    retry(learner)
    assert stats(r, names) == {"learned": 8, "unknown": 1, "duplicate": 1, "parked": 6}
    assert waiting(r, names) == ["e11"]
    store_rows(r, names, [11])
    retry(learner)
    assert stats(r, names)["learned"] == 9
    assert waiting(r, names) == []
    r.close()


def test_no_more_than_the_limit_wait_and_a_zero_grace_waits_for_nothing(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    make_learner(settings, r, early_labels_max=2).process(records(names, [0, 1, 2, 3, 5]))
    assert stats(r, names) == {"learned": 0, "unknown": 3, "duplicate": 0, "parked": 2}
    assert waiting(r, names) == ["e0", "e1"]
    r.delete(names.learner_early(), names.learner_stats())
    make_learner(settings, r, early_label_grace_s=0).process(records(names, [0, 1]))
    assert stats(r, names) == {"learned": 0, "unknown": 2, "duplicate": 0}
    assert waiting(r, names) == []
    r.close()


def test_a_worker_learns_labels_that_came_before_their_transactions(
    settings: Settings, tmp_path: Path
) -> None:
    """Labels produced before their feature rows exist; the rows appear later (one unreadable):
    the worker's timer learns each good label once and dead-letters the poison one."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    ids = list(range(8))  # e4 is poison
    with running_worker(settings, tmp_path / "w.log", roles="learning") as worker:
        for i in ids:
            p.produce(names.topic("labels"), label(i), f"e{i}".encode())
        assert p.flush(10) == 0
        poll(lambda: stats(r, names).get("parked") == 8, 60, "8 labels waiting")
        assert learned(r, names) == 0
        store_rows(r, names, ids)  # the transactions are scored
        poll(lambda: learned(r, names) == 7, 30, "7 labels learned")
        dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 1)]
        poll(lambda: waiting(r, names) == [], 10, "no label waiting")
        assert worker.poll() is None
    assert [(d["key"], d["partition"], d["offset"]) for d in dead] == [("e4", 0, 4)]
    assert dead[0]["value"] == label(4).decode()
    assert dead[0]["error"].startswith("UnusableRow: the feature row of e4")
    assert stats(r, names) == {"learned": 7, "unknown": 0, "duplicate": 0, "parked": 8}
    assert "Traceback" not in (tmp_path / "w.log").read_text()
    r.close()
