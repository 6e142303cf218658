"""Alert delivery end to end: alerts topic -> real worker -> signed webhooks to real receivers.

One worker and one API serve the whole module (their start is most of the cost); every test
uses its own subjects and subscriptions, so tests do not see each other's alerts.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from riverwatch.alerts.signing import message_id, verify
from tests.support.alerts import (
    alert,
    alert_env,
    publish,
    receiver,
    settled,
    stats,
    subscribe,
)
from tests.support.apiserver import Api
from tests.support.workers import poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with alert_env(stack, tmp_path_factory.mktemp("alerts")) as api:
        yield api


def test_each_alert_arrives_once_signed_and_bad_records_are_dead_lettered(env: Api) -> None:
    subj = f"once-{uuid.uuid4().hex[:6]}"
    with receiver() as rx:
        sub = subscribe(env, rx.url, [subj])
        ids = [f"{subj}-{i}" for i in range(3)]
        fraud = [alert(f"{subj}-f{i}", subj, "fraud", "critical") for i in range(3)]
        publish(
            env,
            alert(ids[0], subj),
            b"not json",
            b'{"alert_id": "x", "kind": "nope"}',
            alert(ids[0], subj),  # the same alert again: delivered once
            alert(ids[1], subj),  # same (kind, subject) within its cooldown: held back
            alert(ids[2], subj, severity="critical"),  # an escalation passes the cooldown
            *fraud,  # fraud alerts are per transaction: no cooldown
        )
        poll(lambda: settled(env, sub["id"], 5), 30, "5 alerts delivered")
        assert [a["alert_id"] for a in rx.alerts()] == [ids[0], ids[2]] + [
            f"{subj}-f{i}" for i in range(3)
        ]
        for headers, body in rx.got:
            verify(sub["secret"], headers, body)
            assert headers["webhook-id"] == message_id(orjson.loads(body)["alert_id"])
    dead = consume(env, "deadletter", 2)
    assert {d["value"] for d in dead} == {"not json", '{"alert_id": "x", "kind": "nope"}'}
    assert all(d["origin_topic"] == env.names.topic("alerts") for d in dead)


def consume(api: Api, topic: str, want: int) -> list[dict[str, Any]]:
    c = Consumer(
        {
            "bootstrap.servers": api.settings.kafka_bootstrap,
            "group.id": f"{api.settings.topic_prefix}check-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([api.names.topic(topic)])
    got: list[dict[str, Any]] = []

    def more() -> bool:
        got.extend(orjson.loads(m.value()) for m in c.consume(100, 0.2) if m.error() is None)
        return len(got) >= want

    try:
        poll(more, 30, f"{want} records on {topic}", every=0)
    finally:
        c.close()
    return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_receiver_that_was_down_gets_everything_once_back(env: Api) -> None:
    subj, port = f"down-{uuid.uuid4().hex[:6]}", free_port()
    sub = subscribe(env, f"http://127.0.0.1:{port}/hook", [subj])
    ids = [f"{subj}-{i}" for i in range(4)]
    publish(env, *(alert(i, subj, "fraud", "critical") for i in ids), key=b"fraud")
    poll(
        lambda: (st := stats(env, sub["id"])["stats"])["attempts"] >= 2 and st["pending"] == 4,
        30,
        "all 4 queued and attempts failing",
    )
    st = stats(env, sub["id"])["stats"]
    assert st["last_status"] == 0 and "ConnectError" in st["last_error"] and st["delivered"] == 0
    with receiver(port=port) as rx:
        poll(lambda: settled(env, sub["id"], 4), 30, "the backlog delivered")
        assert [a["alert_id"] for a in rx.alerts()] == ids
        assert stats(env, sub["id"])["stats"]["failed"] == 0


def test_a_slow_receiver_does_not_delay_a_fast_one(env: Api) -> None:
    subj = f"slow-{uuid.uuid4().hex[:6]}"
    with receiver(delay_s=2.0) as slow, receiver() as fast:
        slow_sub = subscribe(env, slow.url, [subj])
        fast_sub = subscribe(env, fast.url, [subj])
        publish(env, *(alert(f"{subj}-{i}", subj, "fraud") for i in range(3)), key=b"fraud")
        poll(lambda: len(fast.got) == 3, 30, "the fast receiver's 3 alerts")
        assert len(slow.got) < 2, "the fast receiver waited for the slow one"
        for sub in (slow_sub, fast_sub):  # stop the slow one's deliveries before it closes
            assert (
                env.http.delete(
                    f"/v1/subscriptions/{sub['id']}", headers=env.auth("root")
                ).status_code
                == 204
            )
