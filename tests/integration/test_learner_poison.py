"""The learner never dies on one label (real broker and Valkey): a label it cannot learn from
(its stored feature row unreadable) is dead-lettered with the reason and its origin and counted
once as a data-quality reject; every other label of the batch is learned exactly once, also when
the batch is handled again (split, or after Redis went away)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from confluent_kafka import Producer
from river.compose import Pipeline

from riverwatch.context import Context
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.models import online
from riverwatch.models.feature_set import row_features
from riverwatch.models.features import FEATURE_NAMES, FeatureSpec
from riverwatch.models.serving import ONLINE
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.batching import TRANSIENT
from riverwatch.streams.learning import Learner
from riverwatch.streams.records import Out, Record, dead_letter, isolate
from riverwatch.streams.rejects import HANDLER_ERROR
from tests.support.builders import T0
from tests.support.scoring import counters
from tests.support.topics import consume_all
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration

N = len(FEATURE_NAMES)
# feature rows the learner cannot learn from, by event id
POISON = {
    "e4": b"not json",
    "e9": orjson.dumps({"epoch": T0, "terminal_id": "t", "x": [1.0, 2.0]}),
    "e15": orjson.dumps({"epoch": T0, "terminal_id": "t", "x": ["a"] * N}),
}


def row(i: int) -> dict[str, Any]:
    return {"event_id": f"e{i}", "card_id": "c", "terminal_id": "t", "epoch": T0 + i,
            "x": [float((i * 7 + j) % 11) for j in range(N)]}  # fmt: skip


def label(i: int) -> bytes:
    return orjson.dumps({"event_id": f"e{i}", "label": int(i % 3 == 0), "timestamp": T0 + i})


def store_rows(r: redis.Redis, names: Names, ids: range) -> None:
    for i in ids:
        r.set(names.feature_row(f"e{i}"), POISON.get(f"e{i}") or orjson.dumps(row(i)))


def expected_model(ids: list[int]) -> Pipeline:
    """A model that learned the good labels of ``ids`` once each, in their order."""
    model = online.make_model()
    for i in ids:
        if f"e{i}" not in POISON:
            online.learn(model, row_features(row(i)), i % 3 == 0)
    return model


def weights(model: Pipeline) -> dict[str, float]:
    return dict(model["LogisticRegression"].weights)


def published(snapshots: SnapshotStore) -> dict[str, float]:
    got = snapshots.load(ONLINE)
    return weights(online.load_snapshot(got[0])[0]) if got else {}


def learned(r: redis.Redis, names: Names) -> int:
    return int(r.hget(names.learner_stats(), "learned") or 0)


def test_poison_labels_are_dead_lettered_and_the_worker_goes_on_learning_the_others_once(
    settings: Settings, tmp_path: Path
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    store_rows(r, names, range(24))
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i in range(20):  # produced before the worker starts: one batch, poison among good
        p.produce(names.topic("labels"), label(i), f"e{i}".encode())
    assert p.flush(10) == 0
    with running_worker(settings, tmp_path / "w.log", roles="learning") as worker:
        poll(lambda: learned(r, names) == 17, 60, "17 labels learned")
        dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 3)]
        for i in range(20, 24):  # the worker still learns
            p.produce(names.topic("labels"), label(i), f"e{i}".encode())
        assert p.flush(10) == 0
        poll(lambda: learned(r, names) == 21, 30, "21 labels learned")
        # the model published learned each good label once, in order
        want = weights(expected_model(list(range(24))))
        poll(lambda: published(SnapshotStore(r, names)) == pytest.approx(want, abs=1e-12), 30,
             "the published model to have learned the 21 labels")  # fmt: skip
        assert worker.poll() is None
    assert sorted(d["key"] for d in dead) == sorted(POISON)
    for d in dead:
        assert (d["origin_topic"], d["partition"]) == (names.topic("labels"), 0)
        assert d["offset"] == int(d["key"][1:])  # label i was the i-th record of the topic
        assert d["value"] == label(d["offset"]).decode()
        assert d["error"].startswith(f"UnusableRow: the feature row of {d['key']}")
        assert d["worker"].endswith(f":{worker.pid}")
    with pytest.raises(AssertionError, match="timed out"):
        consume_all(settings, names.topic("deadletter"), 4, timeout=3)
    assert counters(r, names) == {
        "valid.labels": 21,
        "records.labels": 3,
        f"labels.{HANDLER_ERROR}": 3,
    }
    r.close()


class FlakyRedis(redis.Redis):
    """Valkey whose next ``fail`` transactions (MULTI/EXEC) fail as if it went away."""

    fail = 0

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        if transaction:
            execute = pipe.execute

            def flaky(*args: Any, **kw: Any) -> Any:
                if FlakyRedis.fail:
                    FlakyRedis.fail -= 1
                    pipe.reset()
                    raise redis.exceptions.ConnectionError("Valkey went away")
                return execute(*args, **kw)

            pipe.execute = flaky
        return pipe


def test_a_batch_handled_again_learns_and_counts_each_label_once(settings: Settings) -> None:
    """In-process, as the agent handles it: the batch split around its poison labels, then
    handled again after Redis failed mid-batch, then redelivered whole."""
    names = Names(settings.topic_prefix)
    r = FlakyRedis.from_url(settings.redis_url or "")
    store_rows(r, names, range(20))
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    settings = settings.model_copy(update={"snapshot_every_s": 3600.0})
    learner = Learner(
        Context.from_settings(settings),
        r,
        RedisFeatureStore(r, names, spec.retention_s),
        SnapshotStore(r, names),
        "w1",
    )
    t_labels, t_dead = names.topic("labels"), names.topic("deadletter")
    batch = [Record(t_labels, 0, i, f"e{i}".encode(), label(i)) for i in range(20)]

    def handle() -> list[Out]:  # what the learner's agent does with a batch (streams.guard)
        failed: list[Record] = []

        def poison(rec: Record, exc: Exception) -> Out:
            failed.append(rec)
            return dead_letter(t_dead, rec, repr(exc), "w1")

        outs = isolate(learner.process, batch, poison, TRANSIENT)
        learner.rejects.count_failed(batch, failed)
        return outs

    FlakyRedis.fail = 1  # the MULTI of the first good part fails: an outage, not poison
    with pytest.raises(redis.exceptions.ConnectionError):
        handle()
    for _ in range(2):  # handled again after the outage, then redelivered
        outs = handle()
        assert sorted(orjson.loads(o.value)["key"] for o in outs) == sorted(POISON)
    assert weights(learner.model) == pytest.approx(weights(expected_model(list(range(20)))),
                                                   abs=1e-12)  # fmt: skip
    assert learned(r, names) == 17
    assert counters(r, names) == {
        "valid.labels": 17,
        "records.labels": 3,
        f"labels.{HANDLER_ERROR}": 3,
    }
    r.close()


def test_a_redis_outage_is_waited_out_not_dead_lettered(settings: Settings, tmp_path: Path) -> None:
    """The worker's own Valkey (durable) stops while labels arrive: the learner retries them
    with a backoff and learns each once when Valkey is back; nothing is dead-lettered."""
    from riverwatch.shell.embedded import EmbeddedStack
    from riverwatch.shell.procs import stop

    own = EmbeddedStack(tmp_path / "valkey", kafka=False, state_dir=tmp_path / "aof").start()
    try:
        settings = settings.model_copy(update={"redis_url": own.redis_url})
        names = Names(settings.topic_prefix)
        r = redis.Redis.from_url(own.redis_url or "")
        store_rows(r, names, range(30))
        good = [i for i in range(30) if f"e{i}" not in POISON]
        p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        log = tmp_path / "w.log"
        with running_worker(settings, log, roles="learning") as worker:
            for i in good[:10]:
                p.produce(names.topic("labels"), label(i), f"e{i}".encode())
            assert p.flush(10) == 0
            poll(lambda: learned(r, names) == 10, 60, "10 labels learned")
            stop(own.procs.pop("redis"))  # Valkey goes away (and saves its AOF)
            for i in good[10:]:
                p.produce(names.topic("labels"), label(i), f"e{i}".encode())
            assert p.flush(10) == 0
            poll(lambda: "batch not done (transient)" in log.read_text(), 30, "a retry")
            assert worker.poll() is None
            own.start_valkey()
            poll(lambda: learned(r, names) == len(good), 60, f"{len(good)} labels learned")
            want = weights(expected_model(good))
            poll(lambda: published(SnapshotStore(r, names)) == pytest.approx(want, abs=1e-12),
                 30, "the published model to have learned each label once")  # fmt: skip
            assert worker.poll() is None
        with pytest.raises(AssertionError, match="timed out"):
            consume_all(settings, names.topic("deadletter"), 1, timeout=3)
        r.close()
    finally:
        own.stop()
