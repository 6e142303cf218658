"""A faust agent's batch guarded (streams.guard): poison records dead-lettered and counted,
outages retried with a backoff, the events held until the outputs are acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import redis

from riverwatch.streams.guard import Guard
from riverwatch.streams.records import Out, Record


class Message:
    """What the guard touches of a faust message: its reference count and final ack."""

    def __init__(self, offset: int, value: bytes):
        self.topic, self.partition, self.offset, self.key = "in", 0, offset, b"k"
        self.value, self.timestamp = value, 1.0
        self.refcount, self.acked = 1, False  # one stream consumes it

    def incref(self) -> None:
        self.refcount += 1

    def ack(self) -> None:
        self.refcount -= 1
        self.acked = self.refcount == 0


class Event:
    def __init__(self, offset: int, value: bytes):
        self.message = Message(offset, value)

    def ack(self) -> None:
        self.message.ack()


class Producer:
    """Sends into ``sent``; the first ``failures`` deliveries fail."""

    def __init__(self, failures: int = 0):
        self.sent: list[tuple[str, bytes]] = []
        self.failures = failures

    async def send(self, topic: str, key: Any, value: bytes, *_: Any) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failures:
            self.failures -= 1
            fut.set_exception(RuntimeError("not delivered"))
        else:
            self.sent.append((topic, value))
            fut.set_result(None)
        return fut


class App:
    def __init__(self, failures: int = 0):
        self.producer = Producer(failures)


def guard() -> Guard:
    g = Guard("test", "in", "dead", "w1")
    g.backoff_min_s = 0.001
    return g


def handler(recs: list[Record]) -> list[Out]:
    if any(r.value == b"bad" for r in recs):
        raise ValueError("cannot handle")
    return [Out("out", None, r.value or b"") for r in recs]


def test_isolated_dead_letters_each_poison_record_with_its_origin_and_counts_them_once() -> None:
    recs = [Record("in", 3, 10 + i, None, v) for i, v in enumerate([b"a", b"bad", b"c", b"bad"])]
    counted: list[tuple[list[Record], list[Record]]] = []
    outs = guard().isolated(handler, recs, lambda batch, failed: counted.append((batch, failed)))
    assert [o.topic for o in outs] == ["out", "dead", "out", "dead"]
    letters = [orjson.loads(o.value) for o in outs if o.topic == "dead"]
    assert [(d["origin_topic"], d["partition"], d["offset"]) for d in letters] == [
        ("in", 3, 11),
        ("in", 3, 13),
    ]
    assert {d["error"] for d in letters} == {"ValueError: cannot handle"}
    assert counted == [(recs, [recs[1], recs[3]])]


def test_isolated_raises_an_outage_as_it_is() -> None:
    def down(recs: list[Record]) -> list[Out]:
        raise redis.exceptions.ConnectionError("Redis went away")

    with pytest.raises(redis.exceptions.ConnectionError):
        guard().isolated(down, [Record("in", 0, 0, None, b"a")])


def test_an_outage_is_retried_and_the_events_are_released_once_the_outputs_are_acknowledged() -> (
    None
):
    events = [Event(i, v) for i, v in enumerate([b"a", b"bad", b"c"])]
    g, app, calls = guard(), App(failures=1), []

    async def handle(recs: list[Record]) -> list[Out]:
        calls.append(len(recs))
        if len(calls) <= 2:
            raise redis.exceptions.ConnectionError("Redis went away")
        assert not any(e.message.acked for e in events)  # held meanwhile
        return g.isolated(handler, recs)

    async def main() -> list[Out]:
        outs = await g.run(app, events, handle)
        for e in events:  # what take_events does when the agent moves on
            e.ack()
        return outs

    outs = asyncio.run(main())
    assert calls == [3, 3, 3]  # the whole batch each time, never split by an outage
    # the first output's delivery failed: all of them sent again (at least once each)
    assert [t for t, _ in app.producer.sent] == ["dead", "out", "out", "dead", "out"]
    assert [o.topic for o in outs] == ["out", "dead", "out"]
    assert all(e.message.acked for e in events)


def test_a_batch_not_handled_when_the_agent_stops_stays_uncommitted() -> None:
    events = [Event(0, b"a")]

    async def handle(recs: list[Record]) -> list[Out]:
        raise redis.exceptions.TimeoutError("Redis is slow")

    async def main() -> None:
        task = asyncio.ensure_future(guard().run(App(), events, handle))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        events[0].ack()  # take_events acks the batch when the agent stops ...

    asyncio.run(main())
    assert not events[0].message.acked  # ... but the guard's reference keeps it uncommitted
