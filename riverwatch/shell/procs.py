"""Child processes that cannot outlive their parent, and small helpers to wait for them."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from riverwatch.core.errors import ServiceUnavailable

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # The kernel sends SIGTERM to the child when the parent dies, even by SIGKILL; this is
    # what guarantees "no child survives its parent" where signal handlers cannot run.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()  # Ctrl-C at the terminal reaches the parent, which stops children in order


def spawn(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child process bound to this process's lifetime, output to ``log`` if given."""
    out: IO[bytes] | int = subprocess.DEVNULL
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115 - the child owns the file descriptor
    try:
        return subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    finally:
        if not isinstance(out, int):
            out.close()


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default when unreadable)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, below the kernel's ephemeral range if it can.

    ``bind(0)`` hands out a port of that range, where the kernel also picks the local ports
    of outgoing connections: a port picked now and bound seconds later (the API, started
    after the broker and Valkey) could meanwhile become a client's, and the server then fails
    with "address already in use" (a CI run did). Below the range only another explicit
    bind can take it.
    """
    low = _ephemeral_low()
    for _ in range(64 if low > 11_000 else 0):
        port = random.randrange(10_000, low)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:  # in use (or lingering): try another
                continue
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``check`` until it is true; raise ServiceUnavailable with the log tail if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with code {proc.returncode}{_tail(log)}")
        try:
            if check():
                return
        except Exception:  # not up yet: refused connection, timeout, protocol error
            pass
        time.sleep(0.1)
    raise ServiceUnavailable(f"{what} did not answer within {timeout:.0f} s{_tail(log)}")


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\nlast lines of " + str(log) + ":\n" + "\n".join(text)


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process (Linux /proc), or None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc; empty once it is gone)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []
