"""The trainer across restarts: a retrain accepted is carried out after the worker restarts,
and a request sent twice (the monitor re-sends one the broker did not confirm) runs once
(and is answered again with its stored outcome once answered)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from riverwatch.core.events import now_utc
from riverwatch.core.names import Names
from riverwatch.core.outputs import Control
from riverwatch.core.settings import Settings
from riverwatch.stores.registry import Registry, UnknownModel
from tests.support.topics import Topics, ask
from tests.support.trainer import ROLES, committed, drain, outcomes, seed, send
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration


def test_retrains_waiting_or_running_when_the_worker_stops_run_after_a_restart(
    settings: Settings, tmp_path: Path, topics: Topics
) -> None:
    seed(settings)
    with running_worker(settings, tmp_path / "w1.log", ROLES):
        running = ask(settings, "retrain")
        waiting = ask(settings, "retrain", source="monitor")  # waits for the first
        # both accepted: the group committed past them (an old worker's lost them here)
        poll(lambda: committed(settings) >= 2, 30, "both requests committed")
    drain(topics)
    assert not outcomes(topics, waiting), "the first retrain ended too soon to test a restart"
    with running_worker(settings, tmp_path / "w2.log", ROLES):
        ran = topics.wait("control", {"request_id": waiting, "status": "done"}, timeout=120)
        first = topics.wait("control", {"request_id": running, "status": "done"}, timeout=10)
        # The stopping worker started no waiting retrain: the monitor's ran here, from the
        # start, after the first (which, had the stopped worker registered a challenger for
        # it before its lease went, is finished with that one: ``resumed``).
        assert not ran["details"].get("resumed"), ran
        number = {o["request_id"]: int(o["target"].removeprefix("batch-")) for o in (first, ran)}
        assert number[waiting] > number[running], (first, ran)
        drain(topics)
    assert len(outcomes(topics, running)) == 1 and len(outcomes(topics, waiting)) == 1
    r = redis.Redis.from_url(settings.redis_url or "")
    registry = Registry(r, Names(settings.topic_prefix), settings.data_dir)
    # one challenger per request: every registered version is the outcome of one of them
    assert sorted(v.name for v in registry.list()) == sorted({first["target"], ran["target"]})
    assert r.hlen(Names(settings.topic_prefix).control("pending")) == 0
    r.close()


def test_a_request_sent_twice_is_carried_out_once_even_after_a_restart(
    settings: Settings, tmp_path: Path, topics: Topics
) -> None:
    seed(settings)
    req = Control(
        action="retrain",
        target="batch",
        request_id=uuid.uuid4().hex,
        reason="test",
        details={"source": "monitor"},
        timestamp=now_utc(),
    )
    with running_worker(settings, tmp_path / "w1.log", ROLES):
        send(settings, req)
        send(settings, req)  # again while it runs
        assert topics.wait("control", {"request_id": req.request_id, "status": "done"}, 120)
        send(settings, req)  # again once answered
    with running_worker(settings, tmp_path / "w2.log", ROLES):
        send(settings, req)  # again to a new worker
        marker = ask(settings, "promote", "batch-99")  # one partition: handled after them
        assert topics.wait("control", {"request_id": marker, "status": "failed"}, timeout=60)
    # answered once; each delivery after that gets the same stored outcome again
    outs = outcomes(topics, req.request_id)
    assert len(outs) >= 2 and all(o == outs[0] for o in outs), outs
    r = redis.Redis.from_url(settings.redis_url or "")
    registry = Registry(r, Names(settings.topic_prefix), settings.data_dir)
    assert registry.champion().name == "batch-1"  # type: ignore[union-attr]
    with pytest.raises(UnknownModel):
        registry.get("batch-2")  # trained once
    r.close()


def test_pending_requests_and_answered_ids_stay_bounded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from riverwatch.streams import control_pending
    from riverwatch.streams.control_pending import PENDING_MAX, Pending

    r = redis.Redis.from_url(settings.redis_url or "")
    pending = Pending(r, Names(settings.topic_prefix))
    reqs = [
        Control(action="retrain", target="batch", request_id=f"r{i}", timestamp=now_utc())
        for i in range(PENDING_MAX + 4)
    ]
    for i, req in enumerate(reqs):
        pending.put(req, "running" if i == len(reqs) - 1 else "waiting")
    pending.put(reqs[0], "running")  # a state change keeps its age
    r.hset(Names(settings.topic_prefix).control("pending"), "junk", b"not json")
    kept, dropped = pending.load()
    assert [d.request_id for d in dropped] == ["r0", "r1", "r2", "r3"]  # the oldest beyond
    assert [(k.request_id, s) for k, s in kept[:2]] == [("r19", "running"), ("r4", "waiting")]
    assert len(kept) == PENDING_MAX and not r.hexists(pending.k_pending, "junk")

    assert pending.known("r5") and not pending.known("r99")
    monkeypatch.setattr(control_pending, "SEEN_MAX", 5)
    pending.answered([f"r{i}" for i in range(10)])
    assert not pending.known("r1") and pending.known("r5")  # out of pending; kept the newest 5
    assert r.zcard(pending.k_seen) == 5 and not r.hexists(pending.k_pending, "r5")
    r.close()
