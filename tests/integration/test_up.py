"""`riverwatch up` as a user runs it: one command, a URL and key, scoring, and a clean stop."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from riverwatch.procs import free_port
from tests.integration.workers import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextmanager
def up(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str, str, list[str]]]:
    """Run `riverwatch up` with a private data dir; yield (process, base URL, key, output)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERWATCH_")}
    env.update(RIVERWATCH_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "riverwatch", "up", "--api-port", str(port), "--for", "300", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "riverwatch is up:" in line:
                break
        url_line = next((ln for ln in lines if "riverwatch is up:" in ln), None)
        assert url_line, "no URL printed within 120 s:\n" + "".join(lines)
        url = url_line.split("riverwatch is up:")[1].strip()
        base, key = url.split("/?key=")
        yield proc, base, key, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


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
