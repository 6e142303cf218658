"""`riverwatch up`: start what is not configured, then workers, API and (with --demo) traffic.

Workers: ``--workers`` scoring processes (roles scoring and learning) and one helper process
(alerts, forecasting, monitoring, training), each with its own interpreter lock.

Every child, the embedded broker and Valkey included, is supervised (shell.supervisor):
started in dependency order, restarted with backoff when it exits, reported when it
crash-loops, never taking the others down. Every child dies with this process
(PR_SET_PDEATHSIG); on Ctrl-C, SIGTERM or the end of ``--for`` they are stopped in reverse
order: traffic, API, workers (which finish their batches, commit and snapshot), then the
broker and Valkey. ``<data dir>/endpoints.json`` tells the other commands where it all runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import typer

from riverwatch.core.apikeys import create_key, hash_key
from riverwatch.core.events import Alert
from riverwatch.core.kafka import ensure_topics, producer
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.runfiles import read_endpoints, remove_runfiles, write_endpoints
from riverwatch.core.settings import Settings, to_env
from riverwatch.shell.demo import clear_demo_status, demo_settings
from riverwatch.shell.embedded import TANSU_DURABLE, EmbeddedStack
from riverwatch.shell.procs import spawn, wait_until
from riverwatch.shell.supervisor import Budget, Child, Supervisor

SCORER_ROLES = "scoring,learning"
HELPER_ROLES = "alerts,forecasting,monitoring,training"
# Dependency tiers: a child (re)starts only while every lower tier runs; stop is the reverse.
TIER_SERVERS, TIER_WORKERS, TIER_API, TIER_TRAFFIC = 0, 1, 2, 3
WORKER_STOP_S = 30.0  # a worker finishes its batch, commits and snapshots the online model
API_START_S = 180.0  # five interpreters importing at once on a busy 2-core machine take a while


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "riverwatch", *args]


def _server_children(stack: EmbeddedStack, logs: Path) -> list[Child]:
    """The embedded servers as supervised children (tier 0: everything else needs them)."""
    out = []
    if stack.redis:
        out.append(Child("valkey", stack.start_valkey, logs / "valkey.log", TIER_SERVERS))
    if stack.kafka:
        log = logs / ("kafka/kafka.log" if stack.broker == "kafka" else "tansu.log")
        out.append(Child("broker", stack.start_broker, log, TIER_SERVERS))
    return out


def _process(name: str, argv: list[str], env: dict[str, str], log: Path, tier: int) -> Child:
    return Child(name, lambda: spawn(argv, env=env, log=log), log, tier)


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
    stopping = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if demo:  # the demo's faster world (labels a day late, ...) where the environment is silent
        settings = demo_settings(settings)
    data = settings.data_dir.resolve()
    running = read_endpoints(data)
    if running is not None:  # two Valkeys on one append-only file would corrupt it
        typer.secho(
            f"riverwatch up is already running on {data} (pid {running.pid}, API "
            f"{running.api_url}); stop it first or use another RIVERWATCH_DATA_DIR",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
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
        settings = _start_servers(sup, stack, settings, api_port, data)
        key = _dev_key(settings)
        clear_demo_status(settings)  # a banner of an earlier demo run must not linger
        sup.on_crash_loop = lambda c: _system_alert(settings, c)
        _start_runtime(sup, settings, data, logs, workers)
        base = f"http://{settings.api_host}:{api_port}"
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
        if demo:
            env = _child_env(settings, data, fresh=False)
            argv = _python("demo")
            demo_child = _process("demo", argv, env, logs / "demo.log", TIER_TRAFFIC)
            demo_child.restart = False
            sup.add(demo_child)
        write_endpoints(
            data, bootstrap=settings.kafka_bootstrap, redis_url=settings.redis_url, api_url=base
        )
        typer.secho(f"riverwatch is up: {base}/?key={key}", fg="green", bold=True)
        typer.echo(f"API key (admin): {key}  (also in {data / 'api-key'})")
        typer.echo(f"logs: {logs}   endpoints: {data / 'endpoints.json'}   stop: Ctrl-C")
        if demo:
            typer.echo(
                "demo: warming up, calm, then a drift episode: see the page's banner or "
                "`riverwatch status`"
            )
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


def _start_servers(
    sup: Supervisor, stack: EmbeddedStack, settings: Settings, api_port: int, data: Path
) -> Settings:
    """Start the embedded servers (supervised); the settings the other children get."""
    for server in _server_children(stack, data / "logs"):
        sup.add(server)
    settings = settings.model_copy(
        update={
            "kafka_bootstrap": settings.kafka_bootstrap or stack.bootstrap,
            "redis_url": settings.redis_url or stack.redis_url,
            "api_port": api_port,
            "data_dir": data,
        }
    )
    for c in sup.children:
        if c.name == "broker":  # a restarted broker is empty: every topic again
            c.on_restart = lambda: _topics_again(settings)
    ensure_topics(settings)
    return settings


def _start_runtime(
    sup: Supervisor, settings: Settings, data: Path, logs: Path, workers: int
) -> None:
    """Scorers, the helper and the API as supervised children."""
    env = _child_env(settings, data, fresh=True)
    forget = _forget_worker(settings, data)
    # Scorers (with the label learner) apart from the CPU-heavy helpers: in one process
    # the forecaster, monitor and trainer would share the scorer's interpreter lock.
    for i in range(workers):
        argv = _python("worker", "--roles", SCORER_ROLES)
        c = _process(f"worker-{i}", argv, env, logs / f"worker-{i}.log", TIER_WORKERS)
        c.on_exit, c.stop_timeout_s = forget, WORKER_STOP_S
        sup.add(c)
    argv = _python("worker", "--roles", HELPER_ROLES)
    c = _process("helper", argv, env, logs / "helper.log", TIER_WORKERS)
    c.on_exit, c.stop_timeout_s = forget, WORKER_STOP_S
    sup.add(c)
    sup.add(_process("api", _python("api"), env, logs / "api.log", TIER_API))


def _topics_again(settings: Settings) -> None:
    created = ensure_topics(settings)
    typer.echo(f"broker restarted: {len(created)} topics created again")


def _forget_worker(settings: Settings, data: Path) -> Callable[[int], None]:
    """A hook for a dead worker: drop its heartbeat and its live metrics at once.

    Without it /readyz counts a killed worker until its beat ages out (3 heartbeats), and its
    last consumer-lag gauge stays in the exposition.
    """
    from prometheus_client import multiprocess

    names = Names(settings.topic_prefix)
    prom = str(data / "prometheus")

    def forget(pid: int) -> None:
        multiprocess.mark_process_dead(pid, prom)
        wid = f"{socket.gethostname()}:{pid}"  # streams.runtime.worker_id of that process
        r = redis_client(settings)
        try:
            p = r.pipeline(transaction=False)
            p.hdel(names.workers(), wid)
            p.hdel(names.helpers(), wid)
            p.hdel(names.worker_partitions(), wid)
            p.execute()
        finally:
            r.close()

    return forget


def _system_alert(settings: Settings, c: Child) -> None:
    """Publish a ``system`` alert for a crash-looping child (when the broker takes it)."""
    names = Names(settings.topic_prefix)
    alert = Alert(
        alert_id=f"crash-loop-{c.name}-{uuid.uuid4().hex[:8]}",
        kind="system",
        severity="critical",
        subject=c.name,
        message=f"{c.name} is crash-looping ({len(c.exits)} exits within "
        f"{settings.supervise_window_s:g} s, last code {c.last_code}); see {c.log}",
        details={"child": c.name, "exits": len(c.exits), "last_exit_code": c.last_code},
        timestamp=datetime.now(UTC),
    )
    p = producer(settings, **{"message.timeout.ms": 5000})
    p.produce(names.topic("alerts"), orjson.dumps(alert.model_dump(mode="json")), b"system")
    p.flush(5)


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
    r = redis_client(settings)
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


def _child_env(settings: Settings, data: Path, fresh: bool) -> dict[str, str]:
    env = dict(os.environ)
    prom = data / "prometheus"
    if fresh:
        shutil.rmtree(prom, ignore_errors=True)  # multiprocess files of a previous run are stale
        prom.mkdir(parents=True)
    env.update(to_env(settings))
    env.update(PROMETHEUS_MULTIPROC_DIR=str(prom), PYTHONUNBUFFERED="1")
    return env
