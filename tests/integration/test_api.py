"""The API over real HTTP (uvicorn in a thread) against the real broker and Valkey."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from riverwatch.api.main import package_version
from riverwatch.api.producer import AsyncProducer, QueueFull
from riverwatch.context_parts import kafka_config
from riverwatch.core.apikeys import revoke_key
from riverwatch.core.events import now_utc
from riverwatch.core.kafka import consumer
from riverwatch.core.names import Names
from riverwatch.core.outputs import Score
from riverwatch.core.settings import Settings
from tests.support.apiserver import Api, running_api
from tests.support.builders import payload

pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with running_api(settings) as running:
        yield running


def consume_counts(
    settings: Settings, expected: dict[str, int]
) -> dict[str, list[tuple[str, Any]]]:
    """Read every partition of the given topics from the start until ``expected`` is reached."""
    names = Names(settings.topic_prefix)
    c = consumer(kafka_config(settings), f"{settings.topic_prefix}check-{uuid.uuid4().hex[:6]}")
    c.assign(
        [
            TopicPartition(names.topic(t), p, OFFSET_BEGINNING)
            for t in expected
            for p in range(settings.partitions)
        ]
    )
    seen: dict[str, list[tuple[str, Any]]] = {t: [] for t in expected}
    deadline = time.monotonic() + 20
    try:
        while any(len(seen[t]) < n for t, n in expected.items()) and time.monotonic() < deadline:
            for msg in c.consume(num_messages=500, timeout=0.2):
                topic, key, value = msg.topic(), msg.key(), msg.value()
                assert msg.error() is None and topic and key and value, msg.error()
                seen[topic.removeprefix(settings.topic_prefix)].append(
                    (key.decode(), orjson.loads(value))
                )
    finally:
        c.close()
    return seen


def test_auth_needs_a_known_key_with_the_right_scope(api: Api) -> None:
    missing = api.http.post("/v1/transactions", json=payload(1))
    assert missing.status_code == 401
    assert missing.json() == {"detail": "missing API key: send 'Authorization: Bearer <key>'"}
    assert missing.headers["www-authenticate"] == "Bearer"
    basic = api.http.post("/v1/labels", json={}, headers={"Authorization": "Basic dTpw"})
    assert basic.status_code == 401 and basic.json()["detail"].startswith("missing API key")
    unknown = api.http.get("/v1/scores/e1", headers={"Authorization": "Bearer rw_nope"})
    assert (unknown.status_code, unknown.json()) == (401, {"detail": "unknown API key"})
    assert unknown.headers["www-authenticate"] == "Bearer"

    reader = api.http.post("/v1/transactions", json=payload(1), headers=api.auth("reader"))
    assert reader.status_code == 403
    assert reader.json() == {
        "detail": "this endpoint needs the 'ingest' scope; the key 'reader' has: read"
    }
    writer = api.http.get("/v1/scores/e1", headers=api.auth("writer"))
    assert writer.status_code == 403 and "'read' scope" in writer.json()["detail"]
    assert api.http.get("/v1/scores/e1", headers=api.auth("root")).status_code == 404

    assert revoke_key(api.redis, api.names, api.keys["reader"])
    revoked = api.http.get("/v1/scores/e1", headers=api.auth("reader"))
    assert revoked.json() == {"detail": "unknown API key"}


def test_ingest_accepts_object_list_and_ndjson_and_the_records_reach_kafka(api: Api) -> None:
    post, h = api.http.post, api.auth("writer")
    one = post("/v1/transactions", json=payload(0), headers=h)
    assert (one.status_code, one.json()) == (
        202,
        {"accepted": 1, "rejected": 0, "errors": [], "errors_omitted": 0},
    )

    mixed = [payload(1), payload(2, amount=-5), "nope", payload(3), payload(4, ammount=1)]
    answer = post("/v1/transactions", json=mixed, headers=h)
    assert answer.status_code == 202
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "amount"),
        (2, "(record)"),
        (4, "ammount"),
    ]
    assert "greater than or equal to 0" in body["errors"][0]["reason"]
    assert body["errors"][1]["reason"] == "must be a JSON object, not a string"

    labels = [{"event_id": f"e{i}", "label": i % 2, "timestamp": 1_700_000_100} for i in range(4)]
    assert post("/v1/labels", json=labels, headers=h).json()["accepted"] == 4

    points = [
        {"series_id": "tx_per_min", "timestamp": 1_700_000_000 + 60 * i, "value": i}
        for i in range(3)
    ]
    ndjson = b"\n".join(orjson.dumps(p) for p in points[:2]) + b"\n\n" + orjson.dumps(points[2])
    ndjson += b'\n{"series_id": "s", "timestamp": 0, "value": "x"}\n'
    nd = post("/v1/metrics", content=ndjson, headers={**h, "Content-Type": "application/x-ndjson"})
    assert nd.status_code == 202
    assert nd.json()["accepted"] == 3
    assert nd.json()["errors"] == [
        {
            "index": 3,
            "field": "value",
            "line": 5,
            "reason": "Input should be a valid number",
        }
    ]

    # over 64 KiB: validated in a worker thread, acknowledged as one batch
    bulk = [payload(i) for i in range(100, 1100)]
    assert len(orjson.dumps(bulk)) > 64 * 1024
    assert post("/v1/transactions", json=bulk, headers=h).json()["accepted"] == 1000

    seen = consume_counts(api.settings, {"transactions": 1003, "labels": 4, "metrics": 3})
    assert {t: len(v) for t, v in seen.items()} == {"transactions": 1003, "labels": 4, "metrics": 3}
    ids = {v["event_id"] for _, v in seen["transactions"]}
    assert ids == {"e0", "e1", "e3"} | {f"e{i}" for i in range(100, 1100)}
    assert all(key == v["card_id"] for key, v in seen["transactions"])
    assert all(key == v["event_id"] for key, v in seen["labels"])
    assert Counter(key for key, _ in seen["metrics"]) == {"tx_per_min": 3}


def test_ingest_answers_422_for_bad_bodies(api: Api) -> None:
    post, h = api.http.post, api.auth("writer")
    all_bad = post("/v1/labels", json=[{"event_id": "e1", "label": 2, "timestamp": 0}], headers=h)
    assert all_bad.status_code == 422
    assert all_bad.json()["accepted"] == 0 and all_bad.json()["errors"][0]["field"] == "label"
    garbage = post("/v1/transactions", content=b"{not json", headers=h)
    assert garbage.status_code == 422 and "not valid JSON" in garbage.json()["detail"]
    scalar = post("/v1/transactions", json=42, headers=h)
    assert scalar.json() == {
        "detail": "the body must be a JSON object or a list of objects, not a number"
    }
    bad_line = post(
        "/v1/metrics",
        content=b'{"a": 1}\n\n{oops\n',
        headers={**h, "Content-Type": "application/x-ndjson"},
    )
    assert bad_line.status_code == 422 and bad_line.json()["detail"].startswith("line 3 ")
    assert post("/v1/metrics", json=[], headers=h).status_code == 422


def test_oversized_bodies_get_413_with_or_without_content_length(settings: Settings) -> None:
    small = settings.model_copy(update={"api_max_body_bytes": 2048})
    with running_api(small) as api:
        big = orjson.dumps([payload(i) for i in range(40)])
        assert len(big) > 2048
        declared = api.http.post("/v1/transactions", content=big, headers=api.auth("writer"))
        assert declared.status_code == 413
        assert "limit of 2048 bytes" in declared.json()["detail"]

        chunked = api.http.post(
            "/v1/transactions",
            content=(big[i : i + 512] for i in range(0, len(big), 512)),
            headers=api.auth("writer"),
        )
        assert chunked.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in chunked.request.headers
        assert chunked.status_code == 413 and "2048 bytes" in chunked.json()["detail"]


def test_scores_are_read_from_redis(api: Api) -> None:
    h = api.auth("reader")
    missing = api.http.get("/v1/scores/e42", headers=h)
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": "no score for event 'e42' yet (not scored, unknown, or expired)"
    }
    score = Score(
        event_id="e42",
        card_id="c1",
        timestamp=now_utc(),
        score=0.91,
        online_score=0.9,
        decision="decline",
        model_versions={"online": "3"},
        latency_ms=4.2,
        scored_at=now_utc(),
    )
    api.redis.set(api.names.score("e42"), score.model_dump_json())
    found = api.http.get("/v1/scores/e42", headers=h)
    assert found.status_code == 200 and found.headers["content-type"] == "application/json"
    assert Score.model_validate(found.json()) == score


def test_health_readiness_metrics_and_openapi(api: Api) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    unready = api.http.get("/readyz")
    assert unready.status_code == 503
    total = api.settings.partitions
    assert unready.json() == {
        "status": "unready",
        "checks": {
            "kafka": True,
            "redis": True,
            "workers": 0,
            "partitions": {"total": total, "unowned": list(range(total))},
        },
    }
    stale = time.time() - 10 * api.settings.worker_heartbeat_s
    api.redis.hset(api.names.workers(), "w-old", stale)
    api.redis.hset(api.names.worker_partitions(), "w-old", ",".join(map(str, range(total))))
    assert api.http.get("/readyz").json()["checks"]["workers"] == 0
    # A live scorer that owns only some partitions: the others are not scored, so not ready.
    api.redis.hset(api.names.workers(), "w1", time.time())
    api.redis.hset(api.names.worker_partitions(), "w1", "0")
    partial = api.http.get("/readyz")
    assert partial.status_code == 503 and partial.json()["checks"]["workers"] == 1
    assert partial.json()["checks"]["partitions"]["unowned"] == list(range(1, total))
    api.redis.hset(api.names.worker_partitions(), "w1", ",".join(map(str, range(total))))
    ready = api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["workers"] == 1

    api.http.post(
        "/v1/labels",
        json={"event_id": "e1", "label": 1, "timestamp": 0},
        headers=api.auth("writer"),
    )
    page = api.http.get("/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    assert 'riverwatch_events_total{outcome="accepted",topic="labels"}' in page.text
    assert 'route="/v1/scores/{event_id}"' in page.text or 'route="/v1/labels"' in page.text

    spec = api.http.get("/openapi.json").json()
    assert (spec["info"]["title"], spec["info"]["version"]) == ("riverwatch", package_version())
    assert {"/v1/transactions", "/v1/labels", "/v1/metrics", "/v1/scores/{event_id}"} <= set(
        spec["paths"]
    )


def test_unreachable_broker_gives_503_with_retry_after(settings: Settings) -> None:
    dead = settings.model_copy(
        update={
            "kafka_bootstrap": f"127.0.0.1:{closed_port()}",
            "api_produce_timeout_s": 0.5,
        }
    )
    with running_api(dead) as api:
        answer = api.http.post("/v1/transactions", json=payload(1), headers=api.auth("writer"))
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        # No broker ever answered: refused at once, or failed when the client saw it down.
        assert "broker" in answer.json()["detail"] and "retry" in answer.json()["detail"]
        assert api.http.get("/readyz").json()["checks"]["kafka"] is False


def test_a_full_producer_queue_raises_queue_full() -> None:
    tiny = Producer(
        {"bootstrap.servers": f"127.0.0.1:{closed_port()}", "queue.buffering.max.messages": 2}
    )

    async def produce_three() -> None:
        producer = AsyncProducer(tiny).start()
        try:
            await producer.produce("t", [(b"k", b"v")] * 3, timeout_s=5)
        finally:
            assert await producer.close(timeout_s=0) == 2

    with pytest.raises(QueueFull, match="retry in a second"):
        asyncio.run(produce_three())
