"""Files a running `riverwatch up` leaves in its data dir for the other commands and the API.

* ``endpoints.json``: where the running system is (broker bootstrap, Redis URL, API URL; never
  a key) and the pid of the `up` that wrote it. The CLI reads it when
  ``RIVERWATCH_KAFKA_BOOTSTRAP`` / ``RIVERWATCH_REDIS_URL`` are unset. `up` removes it when it
  stops; a file whose `up` is gone (killed) is stale and read as "nothing running".
* ``supervisor.json``: the state of each supervised child (running, restarting, crash-looping),
  shown by ``/readyz`` and ``riverwatch status``.

Both are written whole (temporary file + rename), so a reader never sees half a file.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> _ = write_endpoints(d, bootstrap="127.0.0.1:9092", redis_url="redis://127.0.0.1:6379/0",
...                     api_url="http://127.0.0.1:8000")
>>> read_endpoints(d).api_url
'http://127.0.0.1:8000'
>>> remove_runfiles(d); read_endpoints(d) is None
True
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ENDPOINTS = "endpoints.json"
SUPERVISOR = "supervisor.json"


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
    return path


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in ("Z", "X")


@dataclass(frozen=True)
class Endpoints:
    """The addresses of a running `up`."""

    bootstrap: str | None
    redis_url: str | None
    api_url: str | None
    pid: int
    path: Path


def write_endpoints(
    data_dir: Path, *, bootstrap: str | None, redis_url: str | None, api_url: str | None
) -> Path:
    """Record this process's endpoints in ``data_dir`` (no secrets: the key stays in api-key)."""
    data = {
        "pid": os.getpid(),
        "started": time.time(),
        "bootstrap": bootstrap,
        "redis_url": redis_url,
        "api_url": api_url,
    }
    return _write(data_dir / ENDPOINTS, data)


def read_endpoints(data_dir: Path) -> Endpoints | None:
    """The endpoints of the `up` running on ``data_dir``; None when none runs (or it died)."""
    path = data_dir / ENDPOINTS
    data = _read(path)
    if data is None or not isinstance(data.get("pid"), int) or not pid_alive(data["pid"]):
        return None
    return Endpoints(
        data.get("bootstrap"), data.get("redis_url"), data.get("api_url"), data["pid"], path
    )


def write_supervisor(data_dir: Path, children: dict[str, dict[str, Any]]) -> Path:
    """Record the supervised children's states (see shell.up)."""
    data = {"pid": os.getpid(), "updated": time.time(), "children": children}
    return _write(data_dir / SUPERVISOR, data)


def read_supervisor(data_dir: Path) -> dict[str, dict[str, Any]] | None:
    """The children's states written by a live `up` on ``data_dir``; None without one."""
    data = _read(data_dir / SUPERVISOR)
    if data is None or not isinstance(data.get("pid"), int) or not pid_alive(data["pid"]):
        return None
    children = data.get("children")
    return children if isinstance(children, dict) else None


def remove_runfiles(data_dir: Path) -> None:
    """Remove both files (when `up` stops)."""
    for name in (ENDPOINTS, SUPERVISOR):
        (data_dir / name).unlink(missing_ok=True)
