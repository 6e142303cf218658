"""Redis out of memory is an outage, not poison (real broker and Valkey, in-process).

A Valkey at its ``maxmemory`` (policy ``noeviction``) answers every write with ``OOM``: that
says nothing about the records being handled, so the scoring loop must wait it out and score
them all once memory is back, dead-lettering none; and the API must answer 503 with
Retry-After, not 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import producer
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell.embedded import EmbeddedStack
from tests.support.apiserver import running_api
from tests.support.builders import tx
from tests.support.scoring import running_loop, scorer
from tests.support.topics import consume_all
from tests.support.workers import poll

pytestmark = pytest.mark.integration


def transient_retries() -> float:
    sample = REGISTRY.get_sample_value(
        "riverwatch_batch_retries_total", {"stage": "scorer", "reason": "transient"}
    )
    return sample or 0.0


def full(r: redis.Redis) -> None:
    """Valkey refuses writes from now on: its memory limit is below what it uses."""
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("probe", b"x")


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedStack]:
    """A Valkey of the test's own: its memory limit must not touch the shared one."""
    own = EmbeddedStack(tmp_path / "valkey", kafka=False).start()
    yield own
    own.stop()


def test_a_full_redis_is_waited_out_and_nothing_is_dead_lettered(
    settings: Settings, own_valkey: EmbeddedStack
) -> None:
    settings = settings.model_copy(update={"redis_url": own_valkey.redis_url})
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(own_valkey.redis_url or "")
    prod = producer(kafka_config(settings))
    handler = scorer(settings, r)
    full(r)
    before = transient_retries()
    for i in range(20):
        prod.produce(names.topic("transactions"), tx(i, card=f"c{i % 4}"), f"c{i % 4}".encode())
    assert prod.flush(10) == 0
    with running_loop(settings, handler.process, producer(kafka_config(settings))):
        poll(lambda: transient_retries() >= before + 2, 60, "the loop to retry the full Redis")
        assert not any(r.get(names.score(f"e{i}")) for i in range(20))
        r.config_set("maxmemory", 0)  # memory is back
        poll(lambda: all(r.get(names.score(f"e{i}")) for i in range(20)), 60, "20 scores")
    scored = consume_all(settings, names.topic("scores"), 20)
    assert len(scored) == 20
    with pytest.raises(AssertionError, match="timed out"):
        consume_all(settings, names.topic("deadletter"), 1, timeout=3)
    r.close()


def test_the_api_answers_a_full_redis_with_503_and_retry_after(
    settings: Settings, own_valkey: EmbeddedStack
) -> None:
    settings = settings.model_copy(
        update={"redis_url": own_valkey.redis_url, "webhook_allow_loopback": True}
    )
    r = redis.Redis.from_url(own_valkey.redis_url or "")
    with running_api(settings) as api:  # its API keys are stored before Valkey is full
        full(r)
        body = {"url": "http://127.0.0.1:9/hook"}
        resp = api.http.post("/v1/subscriptions", json=body, headers=api.auth("root"))
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"] == "1"
    assert "OutOfMemoryError" in resp.json()["detail"]
    r.close()
