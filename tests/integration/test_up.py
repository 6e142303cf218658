"""`riverwatch up` as a user runs it: one command, a URL and key, scoring, and a clean stop."""

from __future__ import annotations

import signal
import stat
import time
from pathlib import Path

import httpx
import pytest

from tests.support.up import alive, descendants, up
from tests.support.workers import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_up_scores_posted_and_demo_traffic_then_sigterm_leaves_nothing(tmp_path: Path) -> None:
    with up(tmp_path, "--demo") as (proc, base, key, _):
        keyfile = tmp_path / "data" / "api-key"
        assert keyfile.read_text().strip() == key
        assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
        h = {"Authorization": f"Bearer {key}"}
        # The banner comes once a scorer owns every partition.
        assert httpx.get(f"{base}/readyz").status_code == 200
        tx = {
            "event_id": "user-1",
            "timestamp": "2026-03-01T12:00:00Z",
            "card_id": "c-user",
            "terminal_id": "t-user",
            "amount": 42.0,
        }
        t0 = time.monotonic()
        assert httpx.post(f"{base}/v1/transactions", json=tx, headers=h).status_code == 202
        got = poll(
            lambda: (
                (r := httpx.get(f"{base}/v1/scores/user-1", headers=h)).status_code == 200
                and r.json()
            ),
            30,
            "the posted transaction's score",
            every=0.02,
        )
        print(f"posted -> score readable in {time.monotonic() - t0:.3f} s")
        assert got["event_id"] == "user-1" and got["decision"] in ("approve", "review", "decline")

        def scored() -> float:
            text = httpx.get(f"{base}/metrics").text
            return sum(
                float(ln.rsplit(" ", 1)[1])
                for ln in text.splitlines()
                if ln.startswith("riverwatch_events_total{") and 'outcome="scored"' in ln
            )

        first = poll(lambda: scored() > 100 and scored(), 60, "demo traffic being scored")
        poll(lambda: scored() > first, 60, "demo traffic still being scored")
        family = descendants(proc.pid)
        assert len(family) >= 5  # broker, Valkey, worker, API, demo
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        poll(lambda: not any(alive(p) for p in family), 30, "every child to exit")


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    with up(tmp_path) as (proc, _base, _key, _):
        family = descendants(proc.pid)
        assert len(family) >= 4  # broker, Valkey, worker, API
        proc.kill()  # no handler runs: the kernel's parent-death signal must do it
        proc.wait()
        poll(lambda: not any(alive(p) for p in family), 30, "every orphan to exit")
