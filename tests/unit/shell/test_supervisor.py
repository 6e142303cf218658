"""The supervisor of `riverwatch up` on tiny real child processes: backoff, the restart budget
as a rate, dependency order, crash-loop reports, stop order. Time is passed in explicitly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from riverwatch.shell.procs import spawn
from riverwatch.shell.supervisor import Budget, Child, Supervisor
from tests.support.workers import poll


def proc(code: str) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-c", code])


def crashing(name: str, tier: int, tmp: Path) -> Child:
    return Child(name, lambda: proc("raise SystemExit(3)"), tmp / f"{name}.log", tier)


def sleeping(name: str, tier: int, tmp: Path) -> Child:
    return Child(name, lambda: proc("import time; time.sleep(60)"), tmp / f"{name}.log", tier)


def exited(c: Child) -> bool:
    return c.proc is not None and c.proc.poll() is not None


def test_a_crash_looping_child_is_reported_once_and_never_stops_the_others(tmp_path: Path) -> None:
    looped: list[str] = []
    sup = Supervisor(
        Budget(2, 60.0, 5.0), state_dir=tmp_path, on_crash_loop=lambda c: looped.append(c.name)
    )
    server = sup.add(sleeping("server", 0, tmp_path))
    bad = sup.add(crashing("bad", 1, tmp_path))
    try:
        now = 1000.0
        waits = []
        for _ in range(5):
            poll(lambda: exited(bad), 30, "the bad child to exit")
            sup.check(now)
            waits.append(round(bad.next_start - now, 3))
            now = bad.next_start
            sup.check(now)  # due: restarted
        assert waits == [0.5, 1.0, 5.0, 5.0, 5.0]  # doubling, then the crash-loop pace
        assert looped == ["bad"]  # reported once, when it crossed the budget
        assert server.running() and server.restarts == 0
        state = orjson.loads((tmp_path / "supervisor.json").read_bytes())["children"]
        assert state["bad"]["crash_looping"] and state["bad"]["exits_in_window"] == 5
        assert state["server"] == {**state["server"], "state": "running", "crash_looping": False}
    finally:
        sup.stop_all()
    assert not server.running()


def test_the_budget_is_a_rate_old_exits_are_forgiven(tmp_path: Path) -> None:
    sup = Supervisor(Budget(2, 60.0, 30.0))
    bad = sup.add(crashing("bad", 0, tmp_path))
    try:
        now = 0.0
        for _ in range(2):
            poll(lambda: exited(bad), 30, "the bad child to exit")
            sup.check(now)
            now = bad.next_start
            sup.check(now)
        assert len(bad.exits) == 2
        poll(lambda: exited(bad), 30, "the bad child to exit")
        sup.check(now + 3600)  # an hour later: the two old exits no longer count
        assert len(bad.exits) == 1 and bad.next_start == now + 3600 + 0.5
    finally:
        sup.stop_all()


def test_a_child_waits_for_its_dependencies(tmp_path: Path) -> None:
    sup = Supervisor(Budget(5, 60.0, 30.0))
    server = sup.add(crashing("server", 0, tmp_path))
    worker = sup.add(crashing("worker", 1, tmp_path))
    try:
        poll(lambda: exited(server) and exited(worker), 30, "both to exit")
        sup.check(0.0)
        assert (server.state, worker.state) == ("backoff", "backoff")
        server.start = lambda: proc("import time; time.sleep(60)")
        sup.check(0.4)  # neither is due
        assert (server.state, worker.state) == ("backoff", "backoff")
        # Both due; the worker's dependency (tier 0) starts first in this very check.
        sup.check(10.0)
        assert server.running()
        assert worker.state == "running" and worker.restarts == 1
        server.proc.kill()  # type: ignore[union-attr]
        server.proc.wait()  # type: ignore[union-attr]
        poll(lambda: exited(worker), 30, "the worker to exit")
        sup.check(20.0)

        def no_server() -> subprocess.Popen[bytes]:
            raise OSError("the server did not come up")

        server.start = no_server
        sup.check(100.0)  # the server fails to start: the worker, due as well, must wait
        assert server.proc is None and server.state == "backoff"
        assert worker.state == "backoff" and worker.restarts == 1
    finally:
        sup.stop_all()


def test_stop_all_stops_the_highest_tier_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riverwatch.shell.supervisor as supervisor

    order: list[str] = []
    real_stop = supervisor.stop
    sup = Supervisor(Budget(5, 60.0, 30.0))
    for name, tier in (("broker", 0), ("valkey", 0), ("worker", 1), ("api", 2)):
        sup.add(sleeping(name, tier, tmp_path))
    names = {c.proc.pid: c.name for c in sup.children if c.proc is not None}

    def recording_stop(p: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        order.append(names[p.pid])
        real_stop(p, timeout)

    monkeypatch.setattr(supervisor, "stop", recording_stop)
    sup.stop_all()
    assert order == ["api", "worker", "broker", "valkey"]
    assert [c.state for c in sup.children] == ["stopped"] * 4
    assert not any(c.running() for c in sup.children)
