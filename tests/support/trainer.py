"""The training worker as the integration tests drive it: its role, the offline store seeded
with 45 simulated days, control requests sent and their outcomes read."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from riverwatch.core.names import Names
from riverwatch.core.outputs import Control
from riverwatch.core.settings import Settings
from riverwatch.stores.offline import OfflineStore
from tests.support.builders import labeled_frame
from tests.support.topics import Topics

ROLES = "training"  # the group "worker-training"


def seed(settings: Settings) -> None:
    store = OfflineStore(settings.data_dir, writer="seed")
    store.append(labeled_frame().to_dict("records"))  # 45 simulated days, every label in
    store.close()


def committed(settings: Settings) -> int:
    """The offset the training worker's group committed on ``control`` (one partition)."""
    names = Names(settings.topic_prefix)
    group = names.group(settings.consumer_group, "worker-" + ROLES)
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        (tp,) = c.committed([TopicPartition(names.topic("control"), 0)], 10)
    finally:
        c.close()
    return max(tp.offset, 0)


def send(settings: Settings, req: Control) -> None:
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    p.produce(Names(settings.topic_prefix).topic("control"), req.model_dump_json().encode())
    assert p.flush(10) == 0


def outcomes(topics: Topics, request_id: str) -> list[dict[str, Any]]:
    seen = topics.seen["control"]
    return [c for c in seen if c["request_id"] == request_id and c["status"] != "requested"]


def drain(topics: Topics) -> None:
    """Read what the broker has now (a marker that never comes: the wait runs out)."""
    with pytest.raises(AssertionError):
        topics.wait("control", {"request_id": "never"}, timeout=2)
