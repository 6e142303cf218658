"""A retrain through the running system: the helper's memory while its trainer fits.

Starts the embedded broker and Valkey, fills an offline store with ``RW_TRAIN_ROWS`` (250,000)
labeled rows over 28 days (``bench.train_memory.fill``), starts a helper as ``riverwatch up``
does (``alerts,forecasting,monitoring,training``), lets it settle, asks for a retrain on
``control`` as a client would and samples, every 50 ms until the outcome is on ``control``,
the helper's RSS and that of its child processes (``/proc``). Prints per run: the helper's
RSS before the request, its peak during the retrain, its RSS 10 s after the outcome (the new
champion's reference read by the monitor included), the children's peak and the retrain's
wall time.

With ``RW_BENCH_BASELINE=/path/to/checkout`` the same runs alternate (ABAB) with that
checkout's helper; ``RW_BENCH_REPEATS`` (2) runs each.
``python -m bench.retrain_memory``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import stack_settings
from bench.pipeline import code
from bench.train_memory import DAY, fill
from riverwatch.shell.children import HELPER_ROLES
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.shell.procs import children, rss_bytes
from riverwatch.stores.offline import OfflineStore
from tests.support.topics import Topics, ask
from tests.support.workers import running_worker

ROWS = int(os.environ.get("RW_TRAIN_ROWS", "250000"))
BASELINE = os.environ.get("RW_BENCH_BASELINE")
REPEATS = int(os.environ.get("RW_BENCH_REPEATS", "2"))
BROKER = os.environ.get("RW_BENCH_BROKER", "tansu")


def rss(pid: int) -> float:
    """VmRSS of ``pid`` in MiB (0 once it is gone)."""
    return (rss_bytes(pid) or 0) / 2**20


class Sampler(threading.Thread):
    """The peaks of a process's RSS and of its children's summed RSS, every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.kids, self.done = pid, 0.0, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss(self.pid))
            self.kids = max(self.kids, sum(rss(c) for c in children(self.pid)))
            time.sleep(0.05)


def outcome(topics: Topics, request_id: str, timeout: float = 900) -> dict[str, Any]:
    """The outcome of ``request_id`` on ``control`` (done or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        for status in ("done", "failed"):
            with contextlib.suppress(AssertionError):  # not yet
                return topics.wait("control", {"request_id": request_id, "status": status}, 1)
        assert time.monotonic() < deadline, f"no outcome of {request_id} in {timeout:.0f} s"


def one(stack: EmbeddedStack, tmp: Path, tag: str, checkout: str | None) -> str:
    """One retrain under a fresh helper of ``checkout``; its line of the table."""
    # no scheduled retrain: it would start as the helper comes up, before the measured one
    settings = stack_settings(stack, tmp / tag, f"{tag}-", retrain_every_days=0)
    store = OfflineStore(settings.data_dir, writer="bench")
    fill(store, ROWS, 100 * DAY)
    store.close()
    topics = Topics(settings)
    with code(checkout), running_worker(settings, tmp / f"{tag}.log", HELPER_ROLES) as helper:
        time.sleep(15)  # the helper's roles settle (the monitor's and forecaster's first loads)
        before = rss(helper.pid)
        sampler = Sampler(helper.pid)
        sampler.start()
        t0 = time.monotonic()
        out = outcome(topics, ask(settings, "retrain"))
        took = time.monotonic() - t0
        sampler.done.set()
        sampler.join()
        time.sleep(10)
        after = rss(helper.pid)
    topics.c.close()
    promoted = "promoted" if out["details"].get("promoted") else out["status"]
    return (
        f"| {tag} | {before:.0f} | {sampler.peak:.0f} (+{sampler.peak - before:.0f}) | "
        f"{after:.0f} ({after - before:+.0f}) | {sampler.kids:.0f} | {took:.0f} | {promoted} |"
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="riverwatch-retrain-"))
    load0 = os.getloadavg()[0]
    lines = []
    with EmbeddedStack(tmp, broker=BROKER) as stack:
        for rep in range(REPEATS):
            trees = [("base", BASELINE), ("this", None)] if BASELINE else [("this", None)]
            for label, checkout in trees if rep % 2 == 0 else trees[::-1]:
                print(f"repeat {rep + 1}/{REPEATS}: {label} ...", flush=True)
                lines.append(one(stack, tmp, f"{label}{rep}", checkout))
    print(
        f"\nriverwatch retrain memory through the running system ({ROWS:,} labeled rows, "
        f"{BROKER}, load {load0:.1f} -> {os.getloadavg()[0]:.1f}; baseline: {BASELINE})\n"
        "| run | helper RSS before, MiB | peak during the retrain | 10 s after the outcome "
        "| children's peak | retrain s | outcome |\n|---|---|---|---|---|---|---|"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
