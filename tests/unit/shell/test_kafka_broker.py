"""The Apache Kafka launcher's pure part: its configuration (the jar cache: test_kafka_libs.py)."""

from __future__ import annotations

from pathlib import Path

from riverwatch.core.settings import Settings
from riverwatch.shell import kafka_broker


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_single_node_kraft_with_rf1_internal_topics(tmp_path: Path) -> None:
    p = props(kafka_broker.server_properties(tmp_path, 9092, 9093))
    assert p["process.roles"] == "broker,controller"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    for key in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert p[f"{key}.replication.factor"] == "1"
    assert p["group.initial.rebalance.delay.ms"] == "0"


def test_broker_accepts_the_shortest_session_timeout_settings_allow(tmp_path: Path) -> None:
    shortest = Settings.model_fields["session_timeout_ms"].metadata[0].ge
    p = props(kafka_broker.server_properties(tmp_path, 1, 2))
    assert int(p["group.min.session.timeout.ms"]) <= shortest
    assert int(p["group.consumer.min.session.timeout.ms"]) <= shortest
