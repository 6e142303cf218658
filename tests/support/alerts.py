"""The alert dispatcher under test: an API and a worker with the alerts role, a webhook
receiver, and helpers to publish alerts and read what was stored and delivered.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import ensure_topics
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from tests.support.apiserver import Api, running_api
from tests.support.workers import running_worker


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
    ensure_topics(kafka_config(s), Names(s.topic_prefix))
    with running_worker(s, tmp / "worker.log"), running_api(s) as api:
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


def stored(api: Api, alert_id: str) -> bool:
    r = api.http.get("/v1/alerts", params={"limit": 1000}, headers=api.auth("reader"))
    return any(a["alert_id"] == alert_id for a in r.json()["items"])
