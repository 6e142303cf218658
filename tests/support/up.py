"""`riverwatch up` as a subprocess: start it on a data dir, read its endpoints and children,
wait for readiness, and stop it (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from riverwatch.core.settings import Settings
from riverwatch.shell.procs import free_port
from tests.support.workers import poll


def read_url(proc: subprocess.Popen[str], timeout: float, lines: list[str]) -> tuple[str, str]:
    """Read `up`'s output (kept in ``lines``) until it prints its URL: (base URL, API key)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "riverwatch is up:" in line:
            break
    url = next((ln for ln in lines if "riverwatch is up:" in ln), None)
    assert url, f"no URL printed within {timeout:.0f} s:\n" + "".join(lines)
    base, key = url.split("riverwatch is up:")[1].strip().split("/?key=")
    return base, key


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
def up(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, for_s: int = 300
) -> Iterator[tuple[subprocess.Popen[str], str, str, list[str]]]:
    """Run `riverwatch up` with a private data dir (and ``env``, ``RIVERWATCH_*`` settings, on
    top of none), stopping after ``for_s``; yield (process, base URL, key, output)."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERWATCH_")}
    child_env.update(env or {})
    child_env.update(RIVERWATCH_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "riverwatch",
            "up",
            "--api-port",
            str(port),
            "--for",
            str(for_s),
            *args,
        ],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        base, key = read_url(proc, 120, lines)
        yield proc, base, key, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


START_S = 240.0  # `up` imports and starts 5 Python processes; slow on a busy machine


RECOVER_S = 240.0


def clean_env(data: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with no RIVERWATCH_* variable but the data dir (and extra)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERWATCH_")}
    env.update(RIVERWATCH_DATA_DIR=str(data), PYTHONUNBUFFERED="1", **extra)
    return env


@dataclass
class Up:
    """A running `riverwatch up`: its process, API base URL, key and data dir."""

    proc: subprocess.Popen[str]
    base: str
    key: str
    data: Path

    @property
    def h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def endpoints(self) -> dict[str, Any]:
        return dict(orjson.loads((self.data / "endpoints.json").read_bytes()))

    def children(self) -> dict[str, Any]:
        return dict(orjson.loads((self.data / "supervisor.json").read_bytes())["children"])

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.endpoints()["redis_url"], socket_timeout=5)

    def settings(self) -> Settings:
        ep = self.endpoints()
        return Settings(
            kafka_bootstrap=ep["bootstrap"], redis_url=ep["redis_url"], data_dir=self.data
        )

    def kill_child(self, name: str) -> int:
        """kill -9 the child ``name``; return its pid."""
        pid = poll(lambda: self.children()[name]["pid"], 60, f"{name} running")
        os.kill(pid, signal.SIGKILL)
        return int(pid)

    def restarted(self, name: str, old_pid: int) -> int:
        """Wait until ``name`` runs again under a new pid."""
        return int(
            poll(
                lambda: (
                    (c := self.children()[name])["state"] == "running"
                    and c["pid"] not in (None, old_pid)
                    and c["pid"]
                ),
                RECOVER_S,
                f"{name} restarted",
                every=0.2,
            )
        )


@contextmanager
def running_up(data: Path, *args: str, **env: str) -> Iterator[Up]:
    """`riverwatch up` on ``data`` (with ``args``), niced; killed (with its children) if the
    test fails."""
    port = free_port()
    argv = [sys.executable, "-m", "riverwatch", "up", "--api-port", str(port), *args]
    proc = subprocess.Popen(
        ["nice", "-n", "10", *argv],
        env=clean_env(data, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        base, key = read_url(proc, START_S, lines)
        yield Up(proc, base, key, data)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def ready(up: Up) -> dict[str, Any] | None:
    r = httpx.get(f"{up.base}/readyz", timeout=10)
    return r.json() if r.status_code == 200 else None
