"""`riverwatch up`: start what is not configured, then workers, API and (with --demo) traffic.

Workers: ``--workers`` scoring processes (roles scoring and learning) and one helper process
(alerts, forecasting, monitoring, training), each with its own interpreter lock.

Every child (shell/children.py), the embedded broker and Valkey included, is supervised
(shell/supervisor.py): started in dependency order, restarted with backoff when it exits,
reported when it crash-loops, never taking the others down. Every child dies with this process
(PR_SET_PDEATHSIG); on Ctrl-C, SIGTERM or the end of ``--for`` they are stopped in reverse
order: traffic, API, workers (which finish their batches, commit and snapshot), then the
broker and Valkey. ``<data dir>/endpoints.json`` tells the other commands where it all runs.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import typer

from riverwatch.context_parts import redis_config
from riverwatch.core.apikeys import create_key, hash_key
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.runfiles import read_endpoints, remove_runfiles, write_endpoints
from riverwatch.core.settings import Settings
from riverwatch.shell.children import (
    demo_child,
    start_runtime,
    start_servers,
    system_alert,
)
from riverwatch.shell.demo import clear_demo_status, demo_settings
from riverwatch.shell.embedded import TANSU_DURABLE, EmbeddedStack
from riverwatch.shell.procs import wait_until
from riverwatch.shell.supervisor import Budget, Supervisor

API_START_S = 180.0  # five interpreters importing at once on a busy 2-core machine take a while


def run_up(
    settings: Settings,
    demo: bool,
    workers: int,
    api_port: int,
    duration: float | None,
    broker: str = "tansu",
) -> None:
    """The body of `riverwatch up` (blocking until stopped); ``broker`` names the embedded
    broker started when no Kafka is configured: tansu or kafka (Apache Kafka)."""
    stopping = _stop_on_signals()
    if demo:  # the demo's faster world (labels a day late, ...) where the environment is silent
        settings = demo_settings(settings)
    data = settings.data_dir.resolve()
    _refuse_a_second_up(data)
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = EmbeddedStack(
        logs,
        kafka=not settings.kafka_bootstrap,
        redis=not settings.redis_url,
        state_dir=data / "valkey",
        broker=broker,
    )
    budget = Budget(
        settings.supervise_max_restarts,
        settings.supervise_window_s,
        settings.supervise_backoff_max_s,
    )
    sup = Supervisor(budget, state_dir=data)
    try:
        typer.echo(_starting(stack))
        settings = start_servers(sup, stack, settings, api_port, data)
        key = _dev_key(settings)
        clear_demo_status(settings)  # a banner of an earlier demo run must not linger
        sup.on_crash_loop = lambda c: system_alert(settings, c)
        start_runtime(sup, settings, data, logs, workers)
        base = f"http://{settings.api_host}:{api_port}"
        _wait_for_api(sup, base)
        if demo:
            sup.add(demo_child(settings, data, logs))
        write_endpoints(
            data, bootstrap=settings.kafka_bootstrap, redis_url=settings.redis_url, api_url=base
        )
        _banner(base, key, data, logs, demo)
        deadline = time.monotonic() + duration if duration else None
        while not stopping["now"] and (deadline is None or time.monotonic() < deadline):
            sup.check()
            time.sleep(0.2)
    finally:
        typer.echo("stopping...")
        sup.stop_all()
        stack.stop()  # a server that failed its first start is not supervised yet
        remove_runfiles(data)
        typer.echo("stopped")


def _stop_on_signals() -> dict[str, bool]:
    """A flag SIGTERM and SIGINT set (``["now"]``)."""
    stopping = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stopping


def _refuse_a_second_up(data: Path) -> None:
    """Exit 1 when a `riverwatch up` already runs on ``data``."""
    running = read_endpoints(data)
    if running is not None:  # two Valkeys on one append-only file would corrupt it
        typer.secho(
            f"riverwatch up is already running on {data} (pid {running.pid}, API "
            f"{running.api_url}); stop it first or use another RIVERWATCH_DATA_DIR",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)


def _wait_for_api(sup: Supervisor, base: str) -> None:
    """Wait (supervising meanwhile) until the API answers and a scorer owns every partition."""
    api = next(c for c in sup.children if c.name == "api")

    def api_answers() -> bool:
        sup.check()  # supervising meanwhile: a server that dies now is restarted too
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200

    wait_until(
        api_answers,
        API_START_S,
        "the API",
        api.proc,
        api.log,
    )

    def ready() -> bool:  # a scorer owns every partition: a transaction posted is scored
        sup.check()
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200

    # The banner says "up" only once /readyz does, and before the demo's warm-up backlog
    # exists, so the group join and that backlog are not in front of a user's first
    # transaction.
    wait_until(ready, API_START_S, "a scorer owning every partition", api.proc, api.log)


def _banner(base: str, key: str, data: Path, logs: Path, demo: bool) -> None:
    typer.secho(f"riverwatch is up: {base}/?key={key}", fg="green", bold=True)
    typer.echo(f"API key (admin): {key}  (also in {data / 'api-key'})")
    typer.echo(f"logs: {logs}   endpoints: {data / 'endpoints.json'}   stop: Ctrl-C")
    if demo:
        typer.echo(
            "demo: warming up, calm, then a drift episode: see the page's banner or "
            "`riverwatch status`"
        )


def _starting(stack: EmbeddedStack) -> str:
    name = "Apache Kafka" if stack.broker == "kafka" else "Tansu"
    parts = [p for p, on in ((f"broker ({name})", stack.kafka), ("Valkey", stack.redis)) if on]
    if not parts:
        return "using external Kafka and Redis"
    text = "starting embedded " + " and ".join(parts)
    if stack.redis:
        text += (
            f"\nValkey keeps its data in {stack.state_dir} (append-only file, fsync every second)"
        )
    if stack.kafka and stack.broker == "tansu" and not TANSU_DURABLE:
        text += (
            "\nthe embedded broker keeps messages in memory only (its build has no durable "
            "storage engine): a broker restart loses unconsumed records and consumer offsets"
        )
    return text


def _dev_key(settings: Settings) -> str:
    """The development key: the one in ``api-key`` if Redis still knows it, else a new one."""
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    path = settings.data_dir / "api-key"
    try:
        old = path.read_text().strip() if path.exists() else ""
        if old and r.hexists(names.api_keys(), hash_key(old)):
            return old  # kept by Valkey's append-only file across restarts
        key = create_key(r, names, "development", ["admin"])
    finally:
        r.close()
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
