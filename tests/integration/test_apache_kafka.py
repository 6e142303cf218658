"""What only Apache Kafka does right: scorer lag from real watermarks (Tansu's high
watermarks are unreliable, so there `status` only approximates it) and the KIP-848 consumer
protocol (Tansu gives its consumers no assignment)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell.status import consumer_lag
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration


def test_status_lag_is_exact_on_apache_kafka(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    names = Names(settings.topic_prefix)
    topic, group = names.topic("transactions"), names.group(settings.consumer_group, "scorer")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    n = 7
    for i in range(n):
        tx = {"event_id": f"l{i}", "timestamp": 0, "card_id": f"c{i}", "terminal_id": "t"}
        p.produce(topic, orjson.dumps({**tx, "amount": 1.0}), f"c{i}".encode())
    assert p.flush(10) == 0
    # Nothing committed: every record waits. (Polled: on a fresh broker the first offset
    # lookup may time out while the offsets topic is being created, and lag is then unknown.)
    poll(lambda: consumer_lag(settings, topic, group) == n, 30, f"a lag of {n}")
    with running_worker(settings, tmp_path / "worker.log"):
        poll(lambda: consumer_lag(settings, topic, group) == 0, 60, "the scorer to catch up")
        p.produce(topic, b"not json", b"c0")  # dead-lettered: consumed all the same
        p.flush(10)
        poll(lambda: consumer_lag(settings, topic, group) == 0, 60, "the dead letter's commit")
    assert consumer_lag(settings, topic, group) == 0


def test_kip848_consumer_gets_an_assignment_on_apache_kafka(kafka_settings: Settings) -> None:
    """The next-generation consumer protocol (KIP-848), which Tansu leaves unassigned."""
    from confluent_kafka import Consumer

    settings = kafka_settings
    topic = Names(settings.topic_prefix).topic("transactions")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    p.produce(topic, b"{}", b"k")
    assert p.flush(10) == 0
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}kip848",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([topic])
    try:
        msg = poll(lambda: c.poll(0.5), 60, "a record through a KIP-848 consumer")
        assert msg.error() is None and msg.value() == b"{}"
        assert len(c.assignment()) == settings.partitions
    finally:
        c.close()


@pytest.mark.slow
def test_a_cluster_id_starting_with_a_dash_formats_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One random cluster id in 32 starts with '-': kafka-storage took it for an option and
    the broker never started (seen in a CI run)."""
    from riverwatch.shell import kafka_broker

    monkeypatch.setattr(kafka_broker, "_cluster_id", lambda: "-" + "A" * 21)
    broker = kafka_broker.KafkaBroker(tmp_path / "kafka").start()
    broker.stop()
