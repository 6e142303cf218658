"""Alert delivery end to end: alerts topic -> real worker -> signed webhooks to real receivers.

One worker and one API serve the whole module (their start is most of the cost); every test
uses its own subjects and subscriptions, so tests do not see each other's alerts.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from core.kafka import ensure_topics
from core.settings import Settings
from core.webhooks import message_id, verify
from tests.integration.apiserver import Api, running_api
from tests.integration.workers import poll, running_worker

pytestmark = pytest.mark.integration


class Receiver:
    """A real webhook receiver (http.server in a thread) that records what it was sent."""

    def __init__(self, port: int = 0, status: int = 204, delay_s: float = 0.0):
        self.status, self.delay_s = status, delay_s
        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(outer.delay_s)  # the slow receiver under test, not a test wait
                outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert received, digests flattened, in arrival order."""
        out: list[dict[str, Any]] = []
        for _, body in list(self.got):
            data = orjson.loads(body)
            out.extend(data if isinstance(data, list) else [data])
        return out


@contextmanager
def receiver(**kw: Any) -> Iterator[Receiver]:
    r = Receiver(**kw)
    try:
        yield r
    finally:
        r.close()


@contextmanager
def alert_env(stack: Any, tmp: Path) -> Iterator[Api]:
    """A fresh prefix, one worker and one API, with loopback webhooks and short retries."""
    s = Settings(
        kafka_bootstrap=getattr(stack, "ext_bootstrap", None) or stack.bootstrap,
        redis_url=getattr(stack, "ext_redis", None) or stack.redis_url,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}-",
        data_dir=tmp / "data",
        partitions=2,
        webhook_allow_loopback=True,
        webhook_backoff_base_s=0.05,
        webhook_backoff_max_s=0.3,
        alert_sse_heartbeat_s=1.0,
    )
    ensure_topics(s)
    with running_worker(s, tmp / "worker.log"), running_api(s) as api:
        yield api


@pytest.fixture(scope="module")
def env(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with alert_env(stack, tmp_path_factory.mktemp("alerts")) as api:
        yield api


def alert(
    alert_id: str, subject: str, kind: str = "forecast_anomaly", severity: str = "warning"
) -> bytes:
    return orjson.dumps(
        {
            "alert_id": alert_id,
            "kind": kind,
            "severity": severity,
            "subject": subject,
            "message": f"{kind} on {subject}",
            "details": {"n": 1},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )


def publish(api: Api, *values: bytes, key: bytes = b"forecast_anomaly") -> None:
    """Produce raw values to the alerts topic with a plain Kafka client."""
    p = Producer({"bootstrap.servers": api.settings.kafka_bootstrap})
    for v in values:
        p.produce(api.names.topic("alerts"), v, key)
    assert p.flush(10) == 0


def subscribe(api: Api, url: str, subjects: list[str], **extra: Any) -> dict[str, Any]:
    body = {"url": url, "filters": {"subjects": subjects}, **extra}
    r = api.http.post("/v1/subscriptions", json=body, headers=api.auth("root"))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def stats(api: Api, sub_id: str) -> dict[str, Any]:
    r = api.http.get(f"/v1/subscriptions/{sub_id}", headers=api.auth("root"))
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


def settled(api: Api, sub_id: str, delivered: int) -> bool:
    """True once ``delivered`` alerts are acknowledged and nothing is left to send."""
    st = stats(api, sub_id)["stats"]
    return st["delivered"] == delivered and st["pending"] == 0


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


def stored(api: Api, alert_id: str) -> bool:
    r = api.http.get("/v1/alerts", params={"limit": 1000}, headers=api.auth("reader"))
    return any(a["alert_id"] == alert_id for a in r.json()["items"])


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
