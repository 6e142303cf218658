"""The children `riverwatch up` supervises: the embedded servers, the scorers, the helper, the
API and the demo's traffic; their command lines and environment, their dependency tiers, and
the hooks the supervisor calls (a dead worker forgotten, a crash loop alerted)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer

from riverwatch.context_parts import kafka_config, redis_config
from riverwatch.core.kafka import ensure_topics, producer
from riverwatch.core.names import Names
from riverwatch.core.outputs import Alert, AlertKind
from riverwatch.core.redis import redis_client
from riverwatch.core.roles import HELPER_PROCESS, SCORER_PROCESS
from riverwatch.core.settings import Settings, to_env
from riverwatch.shell.embedded import EmbeddedStack
from riverwatch.shell.procs import spawn
from riverwatch.shell.supervisor import Child, Supervisor

SCORER_ROLES = ",".join(SCORER_PROCESS)  # "scoring,learning": the `--roles` of a scorer
HELPER_ROLES = ",".join(HELPER_PROCESS)  # "alerts,forecasting,monitoring,training"
# Dependency tiers: a child (re)starts only while every lower tier runs; stop is the reverse.
TIER_SERVERS, TIER_WORKERS, TIER_API, TIER_TRAFFIC = 0, 1, 2, 3
WORKER_STOP_S = 30.0  # a worker finishes its batch, commits and snapshots the online model


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


def start_servers(
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
    ensure_topics(kafka_config(settings), Names(settings.topic_prefix))
    return settings


def start_runtime(
    sup: Supervisor, settings: Settings, data: Path, logs: Path, workers: int
) -> None:
    """Scorers, the helper and the API as supervised children."""
    env = child_env(settings, data, fresh=True)
    forget = forget_worker(settings, data)
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
    created = ensure_topics(kafka_config(settings), Names(settings.topic_prefix))
    typer.echo(f"broker restarted: {len(created)} topics created again")


def forget_worker(settings: Settings, data: Path) -> Callable[[int], None]:
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
        r = redis_client(redis_config(settings))
        try:
            p = r.pipeline(transaction=False)
            p.hdel(names.workers(), wid)
            p.hdel(names.helpers(), wid)
            p.hdel(names.worker_partitions(), wid)
            p.execute()
        finally:
            r.close()

    return forget


def system_alert(settings: Settings, c: Child) -> None:
    """Publish a ``system`` alert for a crash-looping child (when the broker takes it)."""
    names = Names(settings.topic_prefix)
    alert = Alert(
        alert_id=f"crash-loop-{c.name}-{uuid.uuid4().hex[:8]}",
        kind=AlertKind.SYSTEM,
        severity="critical",
        subject=c.name,
        message=f"{c.name} is crash-looping ({len(c.exits)} exits within "
        f"{settings.supervise_window_s:g} s, last code {c.last_code}); see {c.log}",
        details={"child": c.name, "exits": len(c.exits), "last_exit_code": c.last_code},
        timestamp=datetime.now(UTC),
    )
    p = producer(kafka_config(settings), **{"message.timeout.ms": 5000})
    p.produce(names.topic("alerts"), orjson.dumps(alert.model_dump(mode="json")), b"system")
    p.flush(5)


def demo_child(settings: Settings, data: Path, logs: Path) -> Child:
    """The demo's traffic (tier 3), run once: not restarted when it ends."""
    env = child_env(settings, data, fresh=False)
    argv = _python("demo")
    demo = _process("demo", argv, env, logs / "demo.log", TIER_TRAFFIC)
    demo.restart = False
    return demo


def child_env(settings: Settings, data: Path, fresh: bool) -> dict[str, str]:
    """The environment of a child: this one's, the settings, and the Prometheus multiprocess
    directory (``fresh``: emptied first)."""
    env = dict(os.environ)
    prom = data / "prometheus"
    if fresh:
        shutil.rmtree(prom, ignore_errors=True)  # multiprocess files of a previous run are stale
        prom.mkdir(parents=True)
    env.update(to_env(settings))
    env.update(PROMETHEUS_MULTIPROC_DIR=str(prom), PYTHONUNBUFFERED="1")
    return env
