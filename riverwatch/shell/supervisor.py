"""The supervisor of `riverwatch up`: starts children in dependency order, restarts them with
backoff, and stops them in reverse order.

Every child, the broker and Valkey included, is supervised the same way. A child has a
``tier``: it is (re)started only while every child of a lower tier runs (broker and Valkey,
tier 0, before the workers, before the API, before the demo traffic), and :meth:`stop_all`
stops the highest tier first. A child that exits is restarted after a wait that doubles with
each exit in the last ``window_s`` seconds (0.5 s, 1 s, 2 s, ... up to ``backoff_max_s``).
More than ``max_restarts`` exits in the window make it *crash-looping*: reported once (log
line, ``supervisor.json`` read by ``/readyz`` and ``riverwatch status``, and the
``on_crash_loop`` hook) and retried every ``backoff_max_s``; it never stops the other children.

>>> Budget(5, 60.0, 30.0).delay(1), Budget(5, 60.0, 30.0).delay(4), Budget(5, 60.0, 30.0).delay(9)
(0.5, 4.0, 30.0)
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from riverwatch.core.runfiles import write_supervisor
from riverwatch.shell.procs import stop

log = logging.getLogger(__name__)
BACKOFF_START_S = 0.5


@dataclass(frozen=True)
class Budget:
    """How many restarts a child gets per window, and how long it waits before each."""

    max_restarts: int
    window_s: float
    backoff_max_s: float

    def delay(self, recent_exits: int) -> float:
        """Seconds to wait before restarting a child that exited ``recent_exits`` times."""
        if recent_exits > self.max_restarts:
            return self.backoff_max_s
        return min(self.backoff_max_s, BACKOFF_START_S * 2 ** max(0, recent_exits - 1))


@dataclass
class Child:
    """A supervised child: how to start it (spawn and, for servers, wait until it answers)."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    log: Path
    tier: int
    restart: bool = True
    on_restart: Callable[[], None] | None = None  # after each start but the first
    on_exit: Callable[[int], None] | None = None  # with the dead process's pid
    stop_timeout_s: float = 10.0
    proc: subprocess.Popen[bytes] | None = None
    exits: deque[float] = field(default_factory=deque)
    state: str = "starting"
    next_start: float = 0.0
    last_code: int | None = None
    restarts: int = 0
    reported: bool = False

    def running(self) -> bool:
        """True while its process runs."""
        return self.proc is not None and self.proc.poll() is None

    def public(self, budget: Budget) -> dict[str, Any]:
        """What ``supervisor.json`` says about it."""
        return {
            "state": self.state,
            "pid": self.proc.pid if self.running() and self.proc is not None else None,
            "tier": self.tier,
            "restarts": self.restarts,
            "exits_in_window": len(self.exits),
            "crash_looping": len(self.exits) > budget.max_restarts,
            "last_exit_code": self.last_code,
            "log": str(self.log),
        }


@dataclass
class Supervisor:
    """Starts, watches and stops the children of one `up`."""

    budget: Budget
    state_dir: Path | None = None
    on_crash_loop: Callable[[Child], None] | None = None
    children: list[Child] = field(default_factory=list)

    def add(self, child: Child) -> Child:
        """Start ``child`` now (its start's errors propagate) and keep watching it."""
        child.proc = child.start()
        child.state = "running"
        self.children.append(child)
        self._save()
        return child

    def check(self, now: float | None = None) -> None:
        """Notice exits, schedule restarts, and start what is due and whose dependencies run."""
        now = time.monotonic() if now is None else now
        changed = False
        for c in self.children:
            while c.exits and now - c.exits[0] > self.budget.window_s:
                c.exits.popleft()  # the budget is a rate: old exits are forgiven
                changed = True
            if c.state == "running" and not c.running():
                self._exited(c, now)
                changed = True
            elif c.state == "backoff" and now >= c.next_start and self._deps_run(c):
                self._restart(c, now)
                changed = True
        if changed:
            self._save()

    def _exited(self, c: Child, now: float) -> None:
        assert c.proc is not None
        c.last_code = c.proc.returncode
        if c.on_exit is not None:
            _quietly(c.on_exit, c.proc.pid)
        if not c.restart:
            c.state = "stopped"
            typer.secho(f"{c.name} exited with code {c.last_code} (not restarted)", fg="yellow")
            return
        c.exits.append(now)
        wait = self.budget.delay(len(c.exits))
        c.state, c.next_start = "backoff", now + wait
        looping = len(c.exits) > self.budget.max_restarts
        typer.secho(
            f"{c.name} exited with code {c.last_code}; restarting in {wait:g} s "
            f"({len(c.exits)} exits in {self.budget.window_s:g} s; see {c.log})",
            fg="red" if looping else "yellow",
        )
        if looping and not c.reported:
            c.reported = True
            typer.secho(
                f"{c.name} is crash-looping: more than {self.budget.max_restarts} exits in "
                f"{self.budget.window_s:g} s; the other children keep running",
                fg="red",
                bold=True,
            )
            if self.on_crash_loop is not None:
                _quietly(self.on_crash_loop, c)
        elif not looping:
            c.reported = False

    def _restart(self, c: Child, now: float) -> None:
        try:
            c.proc = c.start()
        except Exception as exc:  # a server that did not come up: counts as one more exit
            log.warning("%s did not start: %s", c.name, exc)
            c.proc = None
            c.exits.append(now)
            c.next_start = now + self.budget.delay(len(c.exits))
            return
        c.state = "running"
        c.restarts += 1
        typer.secho(f"{c.name} restarted (pid {c.proc.pid})", fg="yellow")
        if c.on_restart is not None:
            _quietly(c.on_restart)

    def _deps_run(self, c: Child) -> bool:
        return all(d.running() for d in self.children if d.tier < c.tier)

    def stop_all(self) -> None:
        """Stop the children, highest tier first; the children of one tier together."""
        for tier in sorted({c.tier for c in self.children}, reverse=True):
            group = [c for c in self.children if c.tier == tier and c.running()]
            for c in group:
                assert c.proc is not None
                c.proc.terminate()  # all of a tier at once: workers finish their batches together
            for c in group:
                assert c.proc is not None
                stop(c.proc, c.stop_timeout_s)
                c.state = "stopped"
        self._save()

    def states(self) -> dict[str, dict[str, Any]]:
        """Each child's state, as written to ``supervisor.json``."""
        return {c.name: c.public(self.budget) for c in self.children}

    def _save(self) -> None:
        if self.state_dir is not None:
            _quietly(write_supervisor, self.state_dir, self.states())


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a hook must never take the supervisor down
        log.exception("supervisor hook %s failed", getattr(fn, "__name__", fn))
