"""Control requests carried out once: under a lease when two workers race for one, applied
once when redelivered after a crash, and a scheduled period claimed with its pending entry in
one step (streams/control_lease.py, streams/control_pending.py, streams/retrains.py)."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import orjson
import pytest
import redis

from riverwatch.context import Context
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.stores.registry import Registry
from riverwatch.streams.control_lease import LeaseLost
from riverwatch.streams.control_pending import Pending
from riverwatch.streams.fit import FitChild
from riverwatch.streams.trainer import Trainer
from tests.support.topics import Topics, ask
from tests.support.topics import control as request
from tests.support.trainer import ROLES, drain, outcomes, seed, send
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration


def registry(settings: Settings, r: redis.Redis) -> Registry:
    return Registry(r, Names(settings.topic_prefix), settings.data_dir)


def three_champions(settings: Settings, r: redis.Redis) -> Registry:
    """batch-1, batch-2, batch-3 promoted in turn: batch-3 the champion."""
    reg = registry(settings, r)
    for _ in range(3):
        v = reg.register(
            {"w": 1},
            data_window=(0, 1),
            holdout_window=(1, 2),
            metrics={"auc": 0.9, "ap": 0.5},
            features=("amount",),
        )
        reg.promote(v.name)
    return reg


def test_two_workers_that_both_own_control_carry_out_a_pending_retrain_once(
    settings: Settings, tmp_path: Path, topics: Topics, r: redis.Redis
) -> None:
    """Two consumer groups: both workers own ``control`` at once (as in a rebalance) and both
    resume the same pending retrain, left by a worker that died with its lease; when the lease
    runs out one carries it out, the other sees it leased or answered."""
    seed(settings)
    req = request("retrain")
    names = Names(settings.topic_prefix)
    Pending(r, names).put(req, "running")  # left by a dead worker
    r.set(names.control(f"lease:{req.request_id}"), "dead:token", px=30_000)  # ... with its lease
    other = settings.model_copy(update={"consumer_group": settings.consumer_group + "-b"})
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with contextlib.ExitStack() as stack:  # started together: both resume at once
        stack.enter_context(running_worker(settings, logs[0], ROLES, wait_ready=False))
        stack.enter_context(running_worker(other, logs[1], ROLES, wait_ready=False))
        done = topics.wait("control", {"request_id": req.request_id, "status": "done"}, 180)
        k_pending = names.control("pending")
        poll(lambda: r.hlen(k_pending) == 0, 30, "the request answered")
        drain(topics)  # a second outcome would come now (both resumed at once)
        for log in logs:  # both saw it pending and leased: both raced for it
            assert "resuming running retrain" in log.read_text(), f"{log.name} came too late"
    assert outcomes(topics, req.request_id) == [done]
    assert [v.name for v in registry(settings, r).list()] == [done["target"]]


def test_a_worker_that_lost_its_lease_changes_nothing(settings: Settings, r: redis.Redis) -> None:
    seed(settings)
    trainer = Trainer(Context.from_settings(settings), r, "slow")
    req = request("retrain")
    lease = trainer.lease(req.request_id)
    assert lease.acquire() and not trainer.lease(req.request_id).acquire()
    r.set(lease.key, "fast:token")  # ours ran out (a long pause) and another worker took it
    with pytest.raises(LeaseLost):
        trainer.handle(req, lease)  # trains, but registers nothing
    assert registry(settings, r).list() == []
    assert list((settings.data_dir / "models").glob("*.pkl")) == []  # nor leaves its artifact
    assert not lease.renew() and not lease.held()
    lease.release()
    assert r.get(lease.key) == b"fast:token"  # the other's lease is left alone

    reg = three_champions(settings, r)
    champion = reg.champion()
    back = request("rollback")
    lease = trainer.lease(back.request_id)
    assert lease.acquire()
    r.delete(lease.key)  # ran out
    with pytest.raises(LeaseLost):
        trainer.handle(back, lease)
    assert reg.champion() == champion and champion is not None


def test_a_retrain_that_loses_its_lease_while_fitting_kills_the_fit(
    settings: Settings, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stopped (its leases let go) while the retrain's child process fitted: the
    child is killed within a second, instead of training to its end for nothing, and nothing
    is registered."""
    seed(settings)
    trainer = Trainer(Context.from_settings(settings), r, "stopping")
    req = request("retrain")
    lease = trainer.lease(req.request_id)
    assert lease.acquire()
    start, children = FitChild.start, []

    def start_then_stop(child: FitChild) -> int:
        pid = start(child)
        children.append(child)
        lease.release()  # Retrains.stop -> release_all, meanwhile
        return pid

    monkeypatch.setattr(FitChild, "start", start_then_stop)
    with pytest.raises(LeaseLost):
        trainer.handle(req, lease)
    (child,) = children
    assert child.proc is not None and child.proc.returncode == -signal.SIGKILL
    assert registry(settings, r).list() == []


def test_a_rollback_applied_by_a_worker_that_died_moves_back_one_step_only(
    settings: Settings, tmp_path: Path, topics: Topics, r: redis.Redis
) -> None:
    """The worker that took the rollback applied it and died before its outcome was out (so
    before its offset was committed): the request is resumed and redelivered, twice."""
    reg = three_champions(settings, r)
    req = request("rollback")
    crashed = Trainer(Context.from_settings(settings), r, "crashed")
    lease = crashed.lease(req.request_id)
    assert lease.acquire()
    Pending(r, Names(settings.topic_prefix)).put(req, "running")
    assert crashed.handle(req, lease)  # applied; then the worker dies, its outcome unsent
    r.pexpire(lease.key, 1)  # and its lease runs out
    assert reg.champion().name == "batch-2"  # type: ignore[union-attr]
    with running_worker(settings, tmp_path / "w.log", ROLES):
        send(settings, req)  # redelivered
        done = topics.wait("control", {"request_id": req.request_id, "status": "done"}, 60)
        send(settings, req)  # and again, once answered
        marker = ask(settings, "promote", "batch-99")  # one partition: handled after them
        assert topics.wait("control", {"request_id": marker, "status": "failed"}, timeout=60)
        drain(topics)
    assert done["target"] == "batch-2" and reg.champion().name == "batch-2"  # type: ignore[union-attr]
    again = outcomes(topics, req.request_id)
    assert len(again) >= 2 and all(o == done for o in again), again  # its stored outcome
    assert [e["action"] for e in reg.audit()][-1] == "rollback"  # one rollback, nothing after


def test_a_retrain_whose_worker_stalled_after_registering_registers_one_challenger(
    settings: Settings, r: redis.Redis
) -> None:
    """The first worker registers its challenger, then stalls past its lease before promoting
    it (LeaseLost: it promotes and answers nothing); the next worker finishes the request with
    that challenger and its verdict instead of training and registering a second one."""
    seed(settings)
    ctx = Context.from_settings(settings)
    req = request("retrain")
    slow = Trainer(ctx, r, "slow")
    lease = slow.lease(req.request_id)
    assert lease.acquire()
    fenced = lease.registry()
    promote = fenced.promote

    def stalled(name: str, reason: str = "") -> object:
        r.delete(lease.key)  # a pause longer than the lease: it ran out
        return promote(name, reason)

    fenced.promote = stalled  # type: ignore[method-assign]
    lease.registry = lambda: fenced  # type: ignore[method-assign]
    with pytest.raises(LeaseLost):
        slow.handle(req, lease)
    (first,) = registry(settings, r).list()
    assert first.stage == "challenger" and first.info["promote"] is True

    fast = Trainer(ctx, r, "fast")
    again = fast.lease(req.request_id)
    assert again.acquire()
    t_control = Names(settings.topic_prefix).topic("control")
    (out,) = [o for o in fast.handle(req, again) if o.topic == t_control]
    assert [(v.name, v.stage) for v in registry(settings, r).list()] == [(first.name, "champion")]
    done = orjson.loads(out.value)
    assert done["status"] == "done" and done["details"]["resumed"] is True, done
    assert done["target"] == first.name


def test_a_reset_delivered_again_is_not_handed_over_again_and_gets_its_outcome(
    settings: Settings, tmp_path: Path, topics: Topics, r: redis.Redis
) -> None:
    names = Names(settings.topic_prefix)
    req = request("reset", "online")
    with running_worker(settings, tmp_path / "w.log", ROLES):
        send(settings, req)
        poll(lambda: r.hexists(names.learner_reset(), req.request_id), 30, "the hand-over")
        # the learner (not running here) takes it and answers, as streams/learning.py does
        r.hdel(names.learner_reset(), req.request_id)
        answer = req.model_copy(update={"status": "done", "reason": "reset to online-v7"})
        send(settings, answer)
        topics.wait("control", {"request_id": req.request_id, "status": "done"}, 30)
        pending = Pending(r, names)
        poll(lambda: pending.lookup(req.request_id)[1] is not None, 30, "its outcome stored")
        send(settings, req)  # redelivered
        marker = ask(settings, "promote", "batch-99")
        assert topics.wait("control", {"request_id": marker, "status": "failed"}, timeout=60)
        drain(topics)
    assert not r.hexists(names.learner_reset(), req.request_id)  # not handed over again
    again = outcomes(topics, req.request_id)
    assert len(again) == 2 and again[0] == again[1], again  # the learner's, then re-emitted


def test_a_scheduled_period_is_claimed_with_its_pending_entry_and_lease_in_one_step(
    settings: Settings, r: redis.Redis
) -> None:
    """The claim, the pending entry and the lease are written together or not at all: a
    crash after the claim cannot lose the period (its pending entry is resumed), one before
    it leaves the period due."""
    seed(settings)
    ctx = Context.from_settings(settings.model_copy(update={"retrain_every_days": 1}))
    names = Names(settings.topic_prefix)
    k_pending = names.control("pending")
    claims = lambda: r.keys(names.registry("scheduled:*"))  # noqa: E731

    r.set(k_pending, b"not a hash")  # the pending write fails: nothing is written
    with pytest.raises(redis.ResponseError):
        Trainer(ctx, r, "w1").scheduled()
    assert claims() == [] and r.keys(names.control("lease:*")) == []
    r.delete(k_pending)

    due = Trainer(ctx, r, "w1").scheduled()
    assert due is not None
    req, lease = due
    entry = orjson.loads(r.hget(k_pending, req.request_id))  # type: ignore[arg-type]
    assert entry["state"] == "running" and len(claims()) == 1 and lease.held()
    assert Trainer(ctx, r, "w2").scheduled() is None  # claimed: another worker skips it
