"""The monitor loop's handler (streams/monitor/agents.py) without a broker: records go to the
monitor by topic; a record it raises on is dead-lettered alone (its topic's part split), the
rest monitored; a batch consumed again (an outage part-way, outputs not acknowledged) is not
monitored twice, its outputs are sent again; acknowledged control records leave the outbox
at the next checkpoint. And the loop's cadence, the cause of the first version's stalls: at a
trickle it batches for ``FILL_S`` and commits at most every ``COMMIT_EVERY_S``, not after each
micro-batch (which flooded the broker's group coordinator with offset commits)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import redis
from confluent_kafka import KafkaError, Producer

from riverwatch.context import Context
from riverwatch.core.settings import Settings
from riverwatch.streams import batching
from riverwatch.streams.monitor import agents
from riverwatch.streams.monitor.agents import MonitorHandler
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Out, Record
from tests.support.fakeloop import FakeProducer, TrickleConsumer


class FakeMonitor:
    def __init__(self, t_control: str):
        self.t_control = t_control
        self.fail: dict[str, BaseException] = {}  # topic -> raised while set
        self.poison: set[bytes] = set()  # values raised on (a bug, for that record)
        self.seen: list[tuple[str, int]] = []  # (topic, offset) of each record monitored
        self.sent_keys: list[bytes] = []
        self.snapshots: list[bool] = []
        self.r = SimpleNamespace(register_script=lambda _s: None)
        self.unwritten: dict[str, BaseException] = {}  # topic -> its write raises while set
        self.owed: Callable[[], list[Out]] | None = None
        self.unwritten_at: set[int] = set()  # the write of a call with these offsets raises

    def unsent(self) -> list[Out]:
        return [Out(self.t_control, b"old", b"{}")]

    def _process(self, topic: str, records: list[Record]) -> list[Out]:
        if topic in self.fail:
            raise self.fail[topic]
        if any(r.value in self.poison for r in records):
            raise ValueError("cannot monitor it")
        self.seen += [(topic, r.offset) for r in records]
        outs = [Out(self.t_control, f"{topic}-{r.offset}".encode(), b"{}") for r in records]

        def write() -> list[Out]:  # as Monitor._emit: taken in, then written
            if topic in self.unwritten:
                raise self.unwritten[topic]
            if any(r.offset in self.unwritten_at for r in records):
                raise redis.exceptions.ConnectionError("down")
            return outs

        try:
            return write()
        except redis.exceptions.ConnectionError:
            self.owed = write
            raise

    def take_owed(self) -> Callable[[], list[Out]] | None:
        owed, self.owed = self.owed, None
        return owed

    def process_scores(self, records: list[Record]) -> list[Out]:
        return self._process("scores", records)

    def process_labels(self, records: list[Record]) -> list[Out]:
        return self._process("labels", records)

    def sent(self, outs: list[Out]) -> None:
        self.sent_keys += [o.key or b"" for o in outs]

    def checkpoint(self, final: bool = True) -> None:
        self.snapshots.append(final)


def ctx(tmp_path: Path) -> Context:
    return Context.from_settings(Settings(topic_prefix="t1-", data_dir=tmp_path))


def handler(tmp_path: Path) -> tuple[MonitorHandler, FakeMonitor]:
    c = ctx(tmp_path)
    fake = FakeMonitor(c.names.topic("control"))
    h = MonitorHandler(c, lambda: cast(Monitor, fake), cast(Producer, FakeProducer()), "w1")
    h._monitor()
    counted: list[int] = []
    h.counters = {t: SimpleNamespace(count_failed=lambda b, f: counted.append(len(f)))
                  for t in (h.t_scores, h.t_labels)}  # type: ignore[misc]  # fmt: skip
    return h, fake


def batch(h: MonitorHandler, first: int = 0) -> list[Record]:
    return [Record(h.t_scores, 0, first, None, b"s"), Record(h.t_labels, 0, first, None, b"l"),
            Record(h.t_scores, 1, first + 1, None, b"s")]  # fmt: skip


def keys(outs: list[Out]) -> list[bytes]:
    return [o.key or b"" for o in outs if o.topic.endswith("control")]


def test_records_go_to_the_monitor_by_topic_with_the_outbox_first(tmp_path: Path) -> None:
    h, fake = handler(tmp_path)
    assert keys(h.process(batch(h))) == [b"old", b"scores-0", b"scores-1", b"labels-0"]
    assert fake.seen == [("scores", 0), ("scores", 1), ("labels", 0)]
    assert keys(h.process(batch(h, 5))) == [b"scores-5", b"scores-6", b"labels-5"]  # once


def test_a_record_the_monitor_raises_on_is_dead_lettered_the_rest_monitored(
    tmp_path: Path,
) -> None:
    h, fake = handler(tmp_path)
    fake.poison = {b"bad"}
    records = [*batch(h), Record(h.t_scores, 2, 9, None, b"bad")]
    outs = h.process(records)
    dead = [o for o in outs if o.topic.endswith("deadletter")]
    assert len(dead) == 1 and b'"offset":9' in dead[0].value.replace(b" ", b"")
    assert sorted(fake.seen) == [("labels", 0), ("scores", 0), ("scores", 1)]


def test_an_outage_part_way_is_raised_and_the_retry_monitors_nothing_twice(
    tmp_path: Path,
) -> None:
    h, fake = handler(tmp_path)
    fake.fail["labels"] = redis.exceptions.ConnectionError("down")
    with pytest.raises(redis.exceptions.ConnectionError):
        h.process(batch(h))  # the scores were monitored, then Redis went away
    del fake.fail["labels"]
    outs = h.process(batch(h))  # the loop consumes the batch again
    assert fake.seen == [("scores", 0), ("scores", 1), ("labels", 0)]  # each once
    assert keys(outs) == [b"old", b"scores-0", b"scores-1", b"labels-0"]  # nothing lost


def test_a_batch_taken_in_and_not_written_is_written_when_consumed_again_not_taken_in_twice(
    tmp_path: Path,
) -> None:
    """Redis fails the write of a part the monitor took in (its windows moved): the retries
    make that write, and only that, until it succeeds; its outputs are not lost."""
    h, fake = handler(tmp_path)
    fake.unwritten["scores"] = redis.exceptions.ConnectionError("down")
    for _ in range(2):  # the write fails again on the first retry
        with pytest.raises(redis.exceptions.ConnectionError):
            h.process(batch(h))
    assert fake.seen == [("scores", 0), ("scores", 1)]  # once, not again on the retry
    del fake.unwritten["scores"]
    outs = h.process([*batch(h), Record(h.t_scores, 0, 7, None, b"s")])  # with a new one
    assert fake.seen == [("scores", 0), ("scores", 1), ("scores", 7), ("labels", 0)]
    assert keys(outs) == [b"scores-0", b"scores-1", b"old", b"scores-7", b"labels-0"]


def test_pieces_taken_in_before_an_outage_are_not_taken_in_again(tmp_path: Path) -> None:
    """A poison record splits the part; a piece is written, then the write of the next
    fails: consumed again, the first piece's outputs are sent again, the second's write is
    made, the poison record is dead-lettered, and no record is taken in twice."""
    h, fake = handler(tmp_path)
    fake.poison, fake.unwritten_at = {b"bad"}, {2}
    records = [Record(h.t_scores, 0, i, None, b"s") for i in range(3)]
    records.append(Record(h.t_scores, 0, 3, None, b"bad"))
    with pytest.raises(redis.exceptions.ConnectionError):
        h.process(records)  # [0, 1] written, [2] taken in and not written
    assert fake.seen == [("scores", 0), ("scores", 1), ("scores", 2)]
    assert len(h.handled.parts) == 2  # the written pieces as one part, the owed one
    fake.unwritten_at = set()
    outs = h.process(records)
    assert fake.seen == [("scores", 0), ("scores", 1), ("scores", 2)]
    assert keys(outs) == [b"scores-0", b"scores-1", b"scores-2", b"old"]
    assert [o for o in outs if o.topic.endswith("deadletter")]  # offset 3, alone


def test_a_batch_consumed_again_sends_its_outputs_again_without_monitoring_them(
    tmp_path: Path,
) -> None:
    h, fake = handler(tmp_path)
    first = h.process(batch(h))
    again = h.process([*batch(h), Record(h.t_scores, 0, 7, None, b"s")])  # not acknowledged
    assert keys(again) == [*keys(first), b"scores-7"]
    assert fake.seen == [("scores", 0), ("scores", 1), ("labels", 0), ("scores", 7)]


def test_acknowledged_requests_leave_the_outbox_at_the_checkpoint(tmp_path: Path) -> None:
    h, fake = handler(tmp_path)
    prod = cast(FakeProducer, h.acks._p)
    prod.produce = lambda t, v, k, on_delivery: prod.produced.append((t, k, on_delivery))  # type: ignore[method-assign]
    for o in [Out(h.t_control, b"ok", b"{}"), Out(h.t_control, b"no", b"{}"), Out("x", b"k", b"")]:
        h.acks.produce(o.topic, o.value, o.key, on_delivery=lambda err, msg: None)
    (_, _, ok), (_, _, refused), (_, _, other) = prod.produced
    ok(None, None)
    refused(KafkaError(KafkaError._MSG_TIMED_OUT), None)
    other(None, None)
    h.checkpoint()
    assert fake.sent_keys == [b"ok"]  # only the acknowledged control record
    assert fake.snapshots == [False]  # and a snapshot, when one is due


def test_the_loop_commits_at_most_every_commit_every_s_not_per_micro_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stall's cause: the first version committed after each micro-batch (58-114 commits
    a second in the benchmark at 500 tx/s). Fails with ``FILL_S = COMMIT_EVERY_S = 0``."""
    h, fake = handler(tmp_path)
    consumer = TrickleConsumer(h.t_scores)
    monkeypatch.setattr(batching, "consumer", lambda *_a, **_k: consumer)
    loop = h.loop(ctx(tmp_path))
    batches: list[int] = []
    process = loop.handler
    loop.handler = lambda records: batches.append(len(records)) or process(records)
    t = threading.Thread(target=loop.run, daemon=True)
    t.start()
    time.sleep(2.0)
    loop.stopping.set()
    t.join(10)
    assert len(fake.seen) > 100  # the trickle was monitored (~200 records/s)
    assert agents.COMMIT_EVERY_S >= 1.0 and agents.FILL_S >= 0.5
    assert consumer.commits <= 4, consumer.commits  # 2 s, one a second (+ the last)
    assert len(batches) <= 6, batches  # 2 s of batches topped up for 0.5 s
    assert True in fake.snapshots  # a last snapshot when the loop stops
