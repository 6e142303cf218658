"""`riverwatch up`: start what is not configured, then workers, API and (with --demo) traffic.

Workers: ``--workers`` scoring processes (roles scoring and learning) and one helper process
(alerts, forecasting, monitoring, training), each with its own interpreter lock.

Every child dies with this process (PR_SET_PDEATHSIG), and on Ctrl-C, SIGTERM or the end of
``--for`` they are stopped in order: traffic, API, workers, then the broker and Valkey.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import typer

from core.apikeys import create_key
from core.kafka import ensure_topics
from core.names import Names
from core.redis import redis_client
from core.settings import Settings, to_env
from riverwatch.embedded import EmbeddedStack
from riverwatch.procs import spawn, stop, wait_until

MAX_RESTARTS = 5
SCORER_ROLES = "scoring,learning"
HELPER_ROLES = "alerts,forecasting,monitoring,training"


@dataclass
class Child:
    """A supervised child: how to start it and its current process."""

    name: str
    argv: list[str]
    log: Path
    restart: bool = True
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0


@dataclass
class Supervisor:
    """Starts and watches the runtime processes of one `up`."""

    env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def add(self, child: Child) -> Child:
        """Start ``child`` and keep watching it."""
        child.proc = spawn(child.argv, env=self.env, log=child.log)
        self.children.append(child)
        return child

    def check(self) -> None:
        """Restart a child that died (a few times), or fail loudly."""
        for c in self.children:
            if c.proc is None or c.proc.poll() is None:
                continue
            code = c.proc.returncode
            if not c.restart or c.restarts >= MAX_RESTARTS:
                raise typer.Exit(_died(c, code))
            c.restarts += 1
            typer.secho(f"{c.name} exited with code {code}; restarting (see {c.log})", fg="yellow")
            c.proc = spawn(c.argv, env=self.env, log=c.log)

    def stop_all(self) -> None:
        """Stop children in reverse start order."""
        for c in reversed(self.children):
            if c.proc is not None:
                stop(c.proc)


def _died(c: Child, code: int | None) -> int:
    tail = c.log.read_text(errors="replace").splitlines()[-10:] if c.log.exists() else []
    typer.secho(f"{c.name} exited with code {code}; last lines of {c.log}:", fg="red", err=True)
    for line in tail:
        typer.echo("  " + line, err=True)
    return 1


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "riverwatch", *args]


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
    data = settings.data_dir.resolve()
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = EmbeddedStack(
        logs, kafka=not settings.kafka_bootstrap, redis=not settings.redis_url, broker=broker
    )
    sup: Supervisor | None = None
    try:
        typer.echo(_starting(stack))
        stack.start()
        settings = settings.model_copy(
            update={
                "kafka_bootstrap": settings.kafka_bootstrap or stack.bootstrap,
                "redis_url": settings.redis_url or stack.redis_url,
                "api_port": api_port,
                "data_dir": data,
            }
        )
        ensure_topics(settings)
        key = _dev_key(settings)
        sup = Supervisor(_child_env(settings, data))
        # Scorers (with the label learner) apart from the CPU-heavy helpers: in one process
        # the forecaster, monitor and trainer would share the scorer's interpreter lock.
        for i in range(workers):
            sup.add(
                Child(
                    f"worker-{i}",
                    _python("worker", "--roles", SCORER_ROLES),
                    logs / f"worker-{i}.log",
                )
            )
        sup.add(Child("helper", _python("worker", "--roles", HELPER_ROLES), logs / "helper.log"))
        api = sup.add(Child("api", _python("api"), logs / "api.log"))
        base = f"http://{settings.api_host}:{api_port}"
        wait_until(
            lambda: httpx.get(f"{base}/healthz", timeout=1).status_code == 200,
            60,
            "the API",
            api.proc,
            api.log,
        )
        if demo:
            sup.add(
                Child(
                    "demo",
                    _python("simulate", "--sink", "kafka", "--demo"),
                    logs / "demo.log",
                    restart=False,
                )
            )
        typer.secho(f"riverwatch is up: {base}/?key={key}", fg="green", bold=True)
        typer.echo(f"API key (admin): {key}  (also in {data / 'api-key'})")
        typer.echo(f"logs: {logs}   stop: Ctrl-C")
        deadline = time.monotonic() + duration if duration else None
        while not stopping["now"] and (deadline is None or time.monotonic() < deadline):
            sup.check()
            time.sleep(0.2)
    finally:
        typer.echo("stopping...")
        if sup is not None:
            sup.stop_all()
        stack.stop()
        typer.echo("stopped")


def _starting(stack: EmbeddedStack) -> str:
    name = "Apache Kafka" if stack.broker == "kafka" else "Tansu"
    parts = [p for p, on in ((f"broker ({name})", stack.kafka), ("Valkey", stack.redis)) if on]
    return "starting embedded " + " and ".join(parts) if parts else "using external Kafka and Redis"


def _dev_key(settings: Settings) -> str:
    r = redis_client(settings)
    key = create_key(r, Names(settings.topic_prefix), "development", ["admin"])
    r.close()
    path = settings.data_dir / "api-key"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _child_env(settings: Settings, data: Path) -> dict[str, str]:
    env = dict(os.environ)
    prom = data / "prometheus"
    shutil.rmtree(prom, ignore_errors=True)  # multiprocess files of a previous run are stale
    prom.mkdir(parents=True)
    env.update(to_env(settings))
    env.update(PROMETHEUS_MULTIPROC_DIR=str(prom), PYTHONUNBUFFERED="1")
    return env
