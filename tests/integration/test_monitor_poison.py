"""The monitor never drops a batch over one record (real broker and Valkey): a score or label
it raises on (its stored feature row unreadable) is dead-lettered with the reason and its
origin and counted once as a data-quality reject (``(record)|invalid|handler_error``), while
the other records of its batch are monitored, once each however often the batch is handled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.context import Context
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.streams.batching import TRANSIENT
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Out, Record, dead_letter, isolate
from riverwatch.streams.rejects import HANDLER_ERROR, RejectCounter
from tests.support.builders import T0
from tests.support.scoring import counters
from tests.support.topics import consume_all
from tests.support.workers import poll, running_worker

if TYPE_CHECKING:
    from riverwatch.shell.embedded import EmbeddedStack

pytestmark = pytest.mark.integration

N = len(FEATURE_NAMES)
POISON = {  # feature rows the monitor cannot window, by event id
    "ep1": b"not json",
    "ep2": orjson.dumps({"epoch": T0, "x": [1.0] * (N + 3), "groups": {}}),
    "ep3": orjson.dumps({"epoch": T0, "terminal_id": "t", "x": [1.0] * N, "groups": "oops"}),
}


def row(i: int) -> dict[str, Any]:
    return {
        "event_id": f"e{i}", "card_id": f"c{i % 3}", "terminal_id": "t", "epoch": T0 + 60 * i,
        "x": [float((i + j) % 5) for j in range(N)], "groups": {"region": "n"}, "score": 0.1,
        "online_score": 0.1, "decision": "approve", "dq": {"p": 0},
    }  # fmt: skip


def score(eid: str, i: int) -> bytes:
    t = T0 + 60 * i
    return orjson.dumps({"event_id": eid, "card_id": "c", "timestamp": t, "score": 0.1,
                         "online_score": 0.1, "decision": "approve", "model_versions": {},
                         "latency_ms": 1.0, "scored_at": t})  # fmt: skip


def label(eid: str, i: int) -> bytes:
    return orjson.dumps({"event_id": eid, "label": i % 2, "timestamp": T0 + 60 * i + 86_400})


def store_rows(r: redis.Redis, names: Names, n: int) -> None:
    for i in range(n):
        r.set(names.feature_row(f"e{i}"), orjson.dumps(row(i)))
    for eid, raw in POISON.items():
        r.set(names.feature_row(eid), raw)


def stat(r: redis.Redis, names: Names, what: str) -> int:
    return int(r.hget(names.monitor("stats"), what) or 0)


def watched(monitor: Monitor) -> list[str]:
    """The event ids of the labels the monitor's core takes in, as it takes them."""
    seen: list[str] = []
    core_labels = monitor.core.labels

    def labels(pairs: Any, champion: str | None) -> Any:
        seen.extend(row["event_id"] for row, _, _ in pairs)
        return core_labels(pairs, champion)

    monitor.core.labels = labels  # type: ignore[method-assign]
    return seen


def test_poison_scores_and_labels_are_dead_lettered_and_the_rest_monitored(
    settings: Settings, tmp_path: Path
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    store_rows(r, names, 31)
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    ids = [f"e{i}" for i in range(30)]
    scores = [*ids[:12], "ep1", *ids[12:25], "ep2", *ids[25:]]
    for i, eid in enumerate(scores):  # one key: one partition, one batch
        p.produce(names.topic("scores"), score(eid, i), b"c")
    assert p.flush(10) == 0
    # the learner too, as a worker runs them: it counts the labels that pass
    with running_worker(settings, tmp_path / "w.log", roles="learning,monitoring") as worker:
        poll(lambda: stat(r, names, "scores") == 30, 60, "30 scores monitored")
        labels = [*ids[:4], "ep3", *ids[4:10]]
        for i, eid in enumerate(labels):
            p.produce(names.topic("labels"), label(eid, i), eid.encode())
        assert p.flush(10) == 0
        poll(lambda: stat(r, names, "labels") == 10, 60, "10 labels monitored")
        dead = [orjson.loads(v) for v in consume_all(settings, names.topic("deadletter"), 3)]
        p.produce(names.topic("scores"), score("e30", 32), b"c")  # the monitor goes on
        assert p.flush(10) == 0
        poll(lambda: stat(r, names, "scores") == 31, 30, "the 31st score monitored")
        assert worker.poll() is None
    got = {(orjson.loads(d["value"])["event_id"], d["origin_topic"], d["offset"]) for d in dead}
    assert got == {
        ("ep1", names.topic("scores"), 12),
        ("ep2", names.topic("scores"), 26),
        ("ep3", names.topic("labels"), 4),
    }
    for d in dead:
        eid = orjson.loads(d["value"])["event_id"]
        assert d["error"].startswith(f"UnusableRow: the feature row of {eid}"), d["error"]
        assert d["worker"].endswith(f":{worker.pid}")
    with pytest.raises(AssertionError, match="timed out"):
        consume_all(settings, names.topic("deadletter"), 4, timeout=3)
    assert counters(r, names) == {
        "records": 2,  # a score stands for its transaction
        HANDLER_ERROR: 2,
        "valid.labels": 10,  # the learner counted 11, the monitor rejected one of them
        "records.labels": 1,
        f"labels.{HANDLER_ERROR}": 1,
    }
    r.close()


def test_a_batch_handled_again_monitors_and_counts_each_record_once(settings: Settings) -> None:
    """In-process, as the agent handles it: the batch split around its poison records, then
    redelivered whole; the good labels reach the core once each."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    store_rows(r, names, 20)
    monitor = Monitor(Context.from_settings(settings), r, "w1")
    seen = watched(monitor)
    t_labels, t_scores = names.topic("labels"), names.topic("scores")
    eids = [f"e{i}" for i in range(20)]
    l_ids, s_ids = [*eids], [*eids]
    l_ids[5], l_ids[14] = "ep1", "ep3"  # a label's windows do not read x (ep2's is wrong)
    s_ids[5], s_ids[14] = "ep1", "ep2"
    by_label = [Record(t_labels, 0, i, e.encode(), label(e, i)) for i, e in enumerate(l_ids)]
    by_score = [Record(t_scores, 1, i, b"c", score(e, i)) for i, e in enumerate(s_ids)]

    def handle(method: Any, batch: list[Record], counter: RejectCounter) -> list[Out]:
        failed: list[Record] = []

        def poison(rec: Record, exc: Exception) -> Out:
            failed.append(rec)
            return dead_letter(names.topic("deadletter"), rec, repr(exc), "w1")

        outs = isolate(method, batch, poison, TRANSIENT)
        counter.count_failed(batch, failed)
        return outs

    good = sorted(e for e in l_ids if e not in POISON)
    for _ in range(2):  # split around the poison, then redelivered whole
        for method, batch, topic in [
            (monitor.process_labels, by_label, "labels"),
            (monitor.process_scores, by_score, "transactions"),
        ]:
            outs = handle(method, batch, RejectCounter(r, names, topic, topic == "labels"))
            assert sorted(seen) == good  # each good label reached the core, once
            letters = [orjson.loads(o.value) for o in outs if o.topic == names.topic("deadletter")]
            assert sorted(d["offset"] for d in letters) == [5, 14]
    assert stat(r, names, "scores") == 2 * 18  # the records of the batches handled whole
    assert counters(r, names) == {
        "records": 2,
        HANDLER_ERROR: 2,
        "valid.labels": -2,  # no learner here: it would have counted the 20 that pass
        "records.labels": 2,
        f"labels.{HANDLER_ERROR}": 2,
    }
    r.close()


@dataclass
class OwnValkey:
    """A durable Valkey of the test's own (an AOF), the feature rows of e0..e19 in it."""

    stack: EmbeddedStack
    settings: Settings
    names: Names
    r: redis.Redis


@pytest.fixture
def own_valkey(settings: Settings, tmp_path: Path) -> Iterator[OwnValkey]:
    from riverwatch.shell.embedded import EmbeddedStack

    stack = EmbeddedStack(tmp_path / "valkey", kafka=False, state_dir=tmp_path / "aof").start()
    try:
        settings = settings.model_copy(update={"redis_url": stack.redis_url})
        names = Names(settings.topic_prefix)
        r = redis.Redis.from_url(stack.redis_url or "")
        store_rows(r, names, 20)
        yield OwnValkey(stack, settings, names, r)
        r.close()
    finally:
        stack.stop()


def test_a_redis_outage_is_waited_out_not_dropped(own_valkey: OwnValkey, tmp_path: Path) -> None:
    """The worker's own Valkey (durable) stops while scores arrive: the monitor retries them
    with a backoff and monitors each once Valkey is back; nothing is dead-lettered."""
    from riverwatch.shell.procs import stop

    own, settings, names, r = own_valkey.stack, own_valkey.settings, own_valkey.names, own_valkey.r
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    log = tmp_path / "w.log"
    with running_worker(settings, log, roles="monitoring") as worker:
        for i in range(10):
            p.produce(names.topic("scores"), score(f"e{i}", i), b"c")
        assert p.flush(10) == 0
        poll(lambda: stat(r, names, "scores") == 10, 60, "10 scores monitored")
        stop(own.procs.pop("redis"))  # Valkey goes away (and saves its AOF)
        for i in range(10, 20):
            p.produce(names.topic("scores"), score(f"e{i}", i), b"c")
        assert p.flush(10) == 0
        retried = "monitor: batch of"  # ... not handled, will retry
        poll(lambda: retried in log.read_text(), 30, "a retry")
        assert worker.poll() is None
        own.start_valkey()
        poll(lambda: stat(r, names, "scores") == 20, 60, "20 scores monitored")
        assert worker.poll() is None
    with pytest.raises(AssertionError, match="timed out"):
        consume_all(settings, names.topic("deadletter"), 1, timeout=3)


def test_redis_lost_after_the_core_took_a_batch_in_owes_its_write_not_a_second_take(
    own_valkey: OwnValkey,
) -> None:
    """The race CI38 met: Valkey stops after the monitor's windows took a batch in and before
    its write (stats, status, policy state, outbox). The batch consumed again must not be
    taken in twice; its write is made once Valkey is back, with the next batch's."""
    from riverwatch.shell.procs import stop
    from riverwatch.streams.monitor.agents import MonitorHandler

    own, settings, names, r = own_valkey.stack, own_valkey.settings, own_valkey.names, own_valkey.r
    ctx = Context.from_settings(settings)
    monitor = Monitor(ctx, redis.Redis.from_url(own.redis_url or ""), "w1")
    taken: list[str] = []
    core_scores = monitor.core.scores
    outage = {"now": True}

    def scores(rows: Any) -> Any:  # the real core, then (once) Valkey goes away
        taken.extend(row["event_id"] for row in rows)
        decision = core_scores(rows)
        if outage.pop("now", False):
            stop(own.procs.pop("redis"))
        return decision

    monitor.core.scores = scores  # type: ignore[method-assign]
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    h = MonitorHandler(ctx, lambda: monitor, p, "w1")
    t_scores = names.topic("scores")
    first = [Record(t_scores, 1, i, b"c", score(f"e{i}", i)) for i in range(10)]
    with pytest.raises(TRANSIENT):
        h.process(first)
    assert taken == [f"e{i}" for i in range(10)]
    with pytest.raises(TRANSIENT):  # consumed again while Valkey is still down
        h.process(first)
    own.start_valkey()
    assert stat(r, names, "scores") == 0  # nothing of the batch was written
    both = [*first, *(Record(t_scores, 1, i, b"c", score(f"e{i}", i)) for i in range(10, 20))]
    h.process(both)
    assert taken == [f"e{i}" for i in range(20)]  # each once
    assert stat(r, names, "scores") == 20
    assert r.get(names.monitor("status")) is not None
    assert r.get(names.monitor("policy")) is not None  # the state of both batches
    monitor.r.close()
