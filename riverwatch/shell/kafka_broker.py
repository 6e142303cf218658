"""Apache Kafka as a child process: a single-node KRaft broker from Maven Central's jars.

The jars are fetched once by Maven into a cache (:mod:`riverwatch.shell.kafka_libs`); no jar
is ever part of the repository. The broker is formatted in a fresh directory on free loopback
ports with replication factor 1 for its internal topics and group timings short enough for
tests, and started with ``java -cp 'libs/*' kafka.Kafka``.

``python -m riverwatch.shell.kafka_broker fetch`` only fills the cache (``make kafka-libs``);
``python -m riverwatch.shell.kafka_broker run`` runs a broker until Ctrl-C (``make kafka``).
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from riverwatch.core.errors import ServiceUnavailable
from riverwatch.shell.kafka_libs import KAFKA_VERSION, fetch_libs
from riverwatch.shell.procs import free_port, port_open, spawn, stop, wait_until

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

# Warnings only, but keep the line that says the broker started (the log is for people).
_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
"""


def _cluster_id() -> str:
    # KRaft wants a UUID in 22 characters of URL-safe base64 (as kafka-storage random-uuid).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _controller_port(config: Path) -> int | None:
    """The controller port an earlier start wrote into ``config``, if any."""
    if not config.exists():
        return None
    for line in config.read_text().splitlines():
        if line.startswith("controller.quorum.voters="):
            return int(line.rsplit(":", 1)[1])
    return None


@dataclass
class SaslSslListener:
    """A SASL_SSL listener beside the PLAINTEXT one (as a secured cluster offers clients):
    TLS with the key and certificate chain of ``keystore_pem`` (one PEM file, key first, the
    key unencrypted PKCS#8), SASL/PLAIN with ``users`` (name -> password)."""

    keystore_pem: Path
    users: dict[str, str]
    port: int | None = None

    def properties(self) -> dict[str, str]:
        """The listener's broker properties (``listener.name.sasl_ssl.*``)."""
        users = " ".join(f'user_{name}="{pw}"' for name, pw in self.users.items())
        return {
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(self.keystore_pem),
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            ),
        }


def server_properties(
    data: Path, port: int, controller_port: int, sasl_ssl: SaslSslListener | None = None
) -> str:
    """A single-node KRaft broker+controller on loopback, tuned for tests and development.

    Internal topics get replication factor 1 (there is one node); consumer groups join at once
    (no initial rebalance delay) and may use the short session timeouts riverwatch's settings
    allow (down to 1 s), for both the classic and the KIP-848 consumer protocol. With
    ``sasl_ssl`` (its port set), clients may also connect over SASL_SSL.
    """
    listeners = [f"PLAINTEXT://{HOST}:{port}"]
    if sasl_ssl is not None:
        listeners.append(f"SASL_SSL://{HOST}:{sasl_ssl.port}")
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": ",".join([*listeners, f"CONTROLLER://{HOST}:{controller_port}"]),
        "advertised.listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
        ),
        "log.dirs": str(data),
        "num.network.threads": "2",
        "num.io.threads": "4",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "group.consumer.min.session.timeout.ms": "1000",
        "group.consumer.session.timeout.ms": "6000",
        "group.consumer.min.heartbeat.interval.ms": "500",
        "group.consumer.heartbeat.interval.ms": "1000",
        **(sasl_ssl.properties() if sasl_ssl is not None else {}),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


@dataclass
class KafkaBroker:
    """One Apache Kafka node (broker and controller) in ``workdir``, on free loopback ports."""

    workdir: Path
    port: int | None = None
    timeout: float = 90.0
    heap: str = "1g"
    proc: subprocess.Popen[bytes] | None = None
    sasl_ssl: SaslSslListener | None = None

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """host:port of the SASL_SSL listener (when the broker has one)."""
        assert self.sasl_ssl is not None and self.sasl_ssl.port
        return f"{HOST}:{self.sasl_ssl.port}"

    @property
    def bootstrap(self) -> str:
        """host:port of the broker's client listener."""
        return f"{HOST}:{self.port}"

    @property
    def logfile(self) -> Path:
        """Where the broker's output goes."""
        return self.workdir / "kafka.log"

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        jvm = [shutil.which("java") or "java", f"-Xmx{self.heap}", "-Xms256m", "-XX:+UseG1GC"]
        jvm += [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
        ]
        return [*jvm, "-cp", f"{libs}/*", main, *args]

    def start(self) -> KafkaBroker:
        """Fetch the jars if needed, format the storage, start the broker and wait until it
        registers (it then answers metadata with itself as a broker)."""
        libs = fetch_libs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(HOST)
        config = self.workdir / "server.properties"
        # A restart on a formatted log keeps its controller's address (the quorum's voter).
        controller = _controller_port(config) or free_port(HOST)
        if self.sasl_ssl is not None:
            self.sasl_ssl.port = self.sasl_ssl.port or free_port(HOST)
        data = self.workdir / "data"
        config.write_text(server_properties(data, self.port, controller, self.sasl_ssl))
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        # A restart keeps its formatted log (formatting again would need the same cluster id).
        if not (self.workdir / "data" / "meta.properties").exists():
            # --cluster-id=<id> in one argument: a random id may start with '-' (1 in 32),
            # which argparse took for an option ("expected one argument").
            cluster = f"--cluster-id={_cluster_id()}"
            fmt = self._java(libs, "kafka.tools.StorageTool", "format", cluster)
            done = subprocess.run(
                [*fmt, "-c", str(config)], capture_output=True, text=True, timeout=120
            )
            if done.returncode != 0:
                raise ServiceUnavailable(f"kafka-storage format failed: {done.stdout}{done.stderr}")
        self.proc = spawn(self._java(libs, "kafka.Kafka", str(config)), log=self.logfile)
        try:
            wait_until(self._registered, self.timeout, "Apache Kafka", self.proc, self.logfile)
        except Exception:
            self.stop()
            raise
        log.info("Apache Kafka answering on %s (pid %d)", self.bootstrap, self.proc.pid)
        return self

    def _registered(self) -> bool:
        from confluent_kafka.admin import AdminClient

        # Ask only once the port is open: librdkafka logs every refused connection.
        if not port_open(HOST, self.port or 0):
            return False
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return bool(admin.list_topics(timeout=2).brokers)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Kafka's controlled shutdown), SIGKILL if it takes over ``timeout``."""
        if self.proc is not None:
            stop(self.proc, timeout)
            self.proc = None


def main(argv: list[str] | None = None) -> int:
    """``fetch``: fill the jar cache. ``run``: a broker in a temporary directory until Ctrl-C."""
    import argparse
    import signal
    import sys
    import threading
    import time

    parser = argparse.ArgumentParser(prog="python -m riverwatch.shell.kafka_broker")
    parser.add_argument("command", choices=["fetch", "run"])
    parser.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.monotonic()
    libs = fetch_libs()
    print(f"Apache Kafka {KAFKA_VERSION} jars in {libs} ({time.monotonic() - t0:.1f} s)")
    if args.command == "fetch":
        return 0
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with tempfile.TemporaryDirectory(prefix="riverwatch-kafka-") as tmp:
        t0 = time.monotonic()
        broker = KafkaBroker(Path(tmp), port=args.port).start()
        print(
            f"Apache Kafka is up on {broker.bootstrap} ({time.monotonic() - t0:.1f} s); "
            f"RIVERWATCH_KAFKA_BOOTSTRAP={broker.bootstrap}; log: {broker.logfile}; stop: Ctrl-C"
        )
        sys.stdout.flush()
        try:
            while not done.wait(0.5):
                if broker.proc is not None and broker.proc.poll() is not None:
                    print(f"Apache Kafka exited with code {broker.proc.returncode}")
                    return 1
        finally:
            t0 = time.monotonic()
            broker.stop()
            print(f"Apache Kafka stopped ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
