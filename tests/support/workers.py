"""Start real worker processes for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import redis

from riverwatch.core.names import Names
from riverwatch.core.roles import Role
from riverwatch.core.settings import Settings, to_env
from riverwatch.core.settings.types import parse_roles

T = TypeVar("T")


def poll(fn: Callable[[], T | None], timeout: float, what: str, every: float = 0.05) -> T:
    """Call ``fn`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running_worker(
    settings: Settings, log: Path, roles: str | None = None, wait_ready: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """A `riverwatch worker` subprocess (``--roles roles`` when given), up once its heartbeat
    is seen (at once with ``wait_ready=False``: a scorer may be well into a backlog by its
    first beat); stopped on exit."""
    env = dict(os.environ, **to_env(settings))
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "riverwatch", "worker"]
    if roles is not None:
        argv += ["--roles", roles]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
    r = redis.Redis.from_url(settings.redis_url or "")
    names = Names(settings.topic_prefix)
    scorer = Role.SCORING in parse_roles(roles or "all")
    beats = names.workers() if scorer else names.helpers()
    try:
        poll(
            lambda: (
                not wait_ready
                or proc.poll() is not None
                or any(k.decode().endswith(f":{proc.pid}") for k in r.hkeys(beats))
            ),
            60,
            "the worker's first heartbeat",
        )
        assert proc.poll() is None, (
            f"worker exited with {proc.returncode}: {log.read_text()[-2000:]}"
        )
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        r.close()


@contextmanager
def deployed(settings: Settings, log: Path, split: bool) -> Iterator[subprocess.Popen[bytes]]:
    """The workers: one all-roles process, or (``split``) a helper and a scorer process as
    ``riverwatch up`` runs them; yields the process that scores."""
    from riverwatch.shell.children import HELPER_ROLES, SCORER_ROLES

    if not split:
        with running_worker(settings, log) as w:
            yield w
        return
    with (
        running_worker(settings, log.with_suffix(".helper.log"), HELPER_ROLES),
        running_worker(settings, log, SCORER_ROLES) as w,
    ):
        yield w


def labels_handled(r: redis.Redis, names: Names) -> int:
    """Labels the learner has handled so far: learned, unknown, duplicate, or waiting for their
    transaction (streams/early.py; such a label is counted once, later as one of the others)."""
    p = r.pipeline(transaction=True)
    p.hgetall(names.learner_stats())
    p.hlen(names.learner_early())
    stats, waiting = p.execute()
    return waiting + sum(int(stats.get(k, 0)) for k in (b"learned", b"unknown", b"duplicate"))
