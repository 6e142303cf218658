"""A worker that is stopping starts no control request: the retrain waiting when the stop
comes, and any request that comes or is resumed after it, stays pending with its lease free,
and the next owner of ``control`` carries it out and answers it once (streams/retrains.py).

The trainer's loop is driven in-process on the real broker and Valkey, so the stop lands
exactly between the two retrains: the running one is held before it trains until the stop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import redis
from confluent_kafka import Producer

from riverwatch.context import Context
from riverwatch.core.names import Names
from riverwatch.core.outputs import Control
from riverwatch.core.settings import Settings
from riverwatch.stores.registry import Registry
from riverwatch.streams.control_lease import Lease
from riverwatch.streams.records import Out
from riverwatch.streams.retrains import Retrains
from riverwatch.streams.trainer import Trainer
from tests.support.topics import Topics
from tests.support.topics import control as request
from tests.support.trainer import drain, outcomes, seed

pytestmark = pytest.mark.integration


def retrains(
    settings: Settings,
    r: redis.Redis,
    worker: str,
    stopping: Callable[[], bool] = lambda: False,
) -> Retrains:
    """The trainer's loop of one worker, sending to the real broker."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})

    def deliver(o: Out) -> None:
        producer.produce(o.topic, o.value, o.key)
        assert producer.flush(10) == 0

    async def send(o: Out) -> None:
        await asyncio.to_thread(deliver, o)

    trainer = Trainer(Context.from_settings(settings), r, worker)
    return Retrains(send, trainer, trainer.pending, stopping)


async def receive(loop: Retrains, *reqs: Control) -> None:
    for req in reqs:
        await loop.receive(req, req.model_dump_json().encode())


async def stopped_between(
    loop: Retrains, running: Control, waiting: Control, *meanwhile: Control
) -> None:
    """``running`` starts, ``waiting`` (the monitor's) waits for it, the worker stops,
    ``meanwhile`` come, then ``running`` trains (its lease released by the stop: it registers
    nothing)."""
    gate = threading.Event()
    handle = loop.trainer.handle

    def held(req: Control, lease: Lease) -> list[Out]:
        assert gate.wait(60), "never let go"
        return handle(req, lease)

    loop.trainer.handle = held  # type: ignore[method-assign]
    await receive(loop, running, waiting)
    task = loop.busy[running.request_id]
    assert loop.waiting == [waiting]
    await loop.stop()
    await receive(loop, *meanwhile)  # while the retrain still runs
    assert loop.waiting == [waiting], "superseded while stopping"
    gate.set()
    await task


def test_a_stopping_worker_starts_no_request_and_the_next_one_answers_each_once(
    settings: Settings, topics: Topics, r: redis.Redis
) -> None:
    seed(settings)
    names = Names(settings.topic_prefix)
    running, waiting = request("retrain"), request("retrain", source="monitor")
    reset, late = request("reset", "online"), request("retrain")

    async def first_worker() -> Retrains:
        loop = retrains(settings, r, "w1")
        await stopped_between(loop, running, waiting)
        await receive(loop, reset, late)  # come while it stops
        await loop.resume()  # and a rescan
        return loop

    stopped = asyncio.run(first_worker())
    assert not stopped.busy and not stopped.held, "started a request while stopping"
    left = stopped.pending.load()[0]
    ids = [running, waiting, reset, late]
    assert [req.request_id for req, _ in left] == [req.request_id for req in ids]
    assert r.keys(names.control("lease:*")) == []  # every lease free for the next owner
    assert not r.exists(names.learner_reset())  # the reset not handed over
    registry = Registry(r, names, settings.data_dir)
    assert registry.list() == []  # the running retrain lost its lease at the stop
    drain(topics)
    assert not any(outcomes(topics, req.request_id) for req in ids)

    async def next_worker() -> None:
        loop = retrains(settings, r, "w2")
        await loop.resume()
        while loop.busy:
            await next(iter(loop.busy.values()))

    asyncio.run(next_worker())
    assert r.hkeys(names.learner_reset()) == [reset.request_id.encode()]  # for the learner
    drain(topics)
    done = {req.request_id: outcomes(topics, req.request_id) for req in (running, waiting, late)}
    assert all(len(o) == 1 and o[0]["status"] == "done" for o in done.values()), done
    # each trained here, once: the running one first, then the newest waiting first
    answers = [done[req.request_id][0] for req in (running, late, waiting)]
    assert not any(a["details"].get("resumed") for a in answers), answers
    numbers = [int(a["target"].removeprefix("batch-")) for a in answers]
    assert numbers == sorted(set(numbers)), answers
    assert sorted(v.name for v in registry.list()) == sorted(a["target"] for a in answers)
    assert r.hlen(names.control("pending")) == 0


def test_requests_due_or_coming_once_the_app_stops_are_left_pending_with_their_lease_free(
    settings: Settings, r: redis.Redis
) -> None:
    """The app began to stop (faust's ``should_stop``) before the trainer's stop was called: a
    scheduled retrain whose period and lease were just claimed is let go, a promote that
    comes is not carried out; both stay pending for the next owner of ``control``."""
    seed(settings)
    s = settings.model_copy(update={"retrain_every_days": 1})
    app_stops = threading.Event()
    loop = retrains(s, r, "w1", stopping=app_stops.is_set)
    due = loop.trainer.scheduled()
    assert due is not None
    scheduled, lease = due
    reg = Registry(r, Names(s.topic_prefix), s.data_dir)
    v = reg.register(
        {"w": 1}, data_window=(0, 1), holdout_window=(1, 2), metrics={"auc": 0.9}, features=()
    )
    promote = request("promote", v.name)
    app_stops.set()

    async def stopping() -> None:
        await loop.start(scheduled, lease)
        await receive(loop, promote)

    asyncio.run(stopping())
    assert not loop.busy and not loop.held and not lease.held()
    assert [(req.request_id, state) for req, state in loop.pending.load()[0]] == [
        (scheduled.request_id, "running"),
        (promote.request_id, "waiting"),
    ]
    assert r.keys(Names(s.topic_prefix).control("lease:*")) == []
    assert reg.champion() is None  # not promoted


def test_retrains_that_come_while_one_runs_and_the_worker_stops_get_no_answer_and_stay_pending(
    settings: Settings, topics: Topics, r: redis.Redis
) -> None:
    """Before, a client's retrain was refused ("already running") and the monitor's newer one
    superseded the waiting one, answers sent while the worker stops (and lost if its producer
    had already stopped); now both are left pending for the next owner of ``control``."""
    seed(settings)
    running, waiting = request("retrain"), request("retrain", source="monitor")
    client, monitor = request("retrain"), request("retrain", source="monitor")

    async def first_worker() -> Retrains:
        loop = retrains(settings, r, "w1")
        await stopped_between(loop, running, waiting, client, monitor)
        return loop

    stopped = asyncio.run(first_worker())
    drain(topics)
    assert not any(outcomes(topics, req.request_id) for req in (waiting, client, monitor))
    left = {req.request_id: state for req, state in stopped.pending.load()[0]}
    assert {k: left.get(k) for k in (client.request_id, monitor.request_id)} == {
        client.request_id: "waiting",
        monitor.request_id: "waiting",
    }
    assert waiting.request_id in left
