"""Kafka SASL_SSL reaches riverwatch's Kafka clients (core.kafka) and the API, against a real
Apache Kafka broker with a SASL_SSL listener (TLS with a certificate from the test's CA,
SASL/PLAIN users), over real sockets (issue 13, finding 11)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from pydantic import SecretStr

from riverwatch.context_parts import kafka_config
from riverwatch.core.errors import ServiceUnavailable
from riverwatch.core.kafka import consumer, ensure_topics, producer
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.shell.kafka_broker import KafkaBroker, SaslSslListener
from tests.support.apiserver import running_api
from tests.support.pki import make_pki
from tests.support.workers import poll, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KafkaBroker, Path]]:
    """An Apache Kafka broker with a SASL_SSL listener (user ``rw``), and the PKI's folder."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    keystore = pki / "server.pem"
    keystore.write_bytes((pki / "server.key").read_bytes() + (pki / "server.crt").read_bytes())
    listener = SaslSslListener(keystore, {"rw": PASSWORD})
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka-sasl"), sasl_ssl=listener).start()
    yield broker, pki
    broker.stop()


def sasl_settings(settings: Settings, broker: KafkaBroker, pki: Path, **update: object) -> Settings:
    return settings.model_copy(
        update={
            "kafka_bootstrap": broker.sasl_ssl_bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": "rw",
            "kafka_sasl_password": SecretStr(PASSWORD),
            "kafka_ssl_ca_file": pki / "ca.crt",
            **update,
        }
    )


def test_clients_and_the_api_speak_sasl_ssl_with_the_settings(
    settings: Settings, secured: tuple[KafkaBroker, Path]
) -> None:
    broker, pki = secured
    s = sasl_settings(settings, broker, pki)
    # the admin client: topics created over SASL_SSL
    assert ensure_topics(kafka_config(s), Names(s.topic_prefix))
    names = Names(s.topic_prefix)
    p = producer(kafka_config(s))
    p.produce(names.topic("labels"), b'{"direct": true}')
    assert p.flush(30) == 0
    with running_api(s) as api:  # the API's producer (and its lag reader) over SASL_SSL
        tx = {"event_id": "sasl-1", "timestamp": time.time(), "card_id": "c", "terminal_id": "t"}
        got = api.http.post(
            "/v1/transactions", json={**tx, "amount": 3.5}, headers=api.auth("writer")
        )
        assert got.status_code == 202, got.text
    c = consumer(kafka_config(s), f"{s.topic_prefix}reader")
    c.subscribe([names.topic("labels"), names.topic("transactions")])
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen.append(m.value())
    c.close()
    assert b'{"direct": true}' in seen
    assert "sasl-1" in {orjson.loads(v).get("event_id") for v in seen}


def test_a_wrong_password_or_an_untrusted_broker_is_refused(
    settings: Settings, secured: tuple[KafkaBroker, Path], tmp_path: Path
) -> None:
    broker, pki = secured
    wrong = sasl_settings(settings, broker, pki, kafka_sasl_password=SecretStr("wrong"))
    with pytest.raises(ServiceUnavailable):
        ensure_topics(kafka_config(wrong), Names(wrong.topic_prefix), timeout=10)
    other = make_pki(tmp_path)  # a CA that did not sign the broker's certificate
    untrusted = sasl_settings(settings, broker, pki, kafka_ssl_ca_file=other / "ca.crt")
    with pytest.raises(ServiceUnavailable):
        ensure_topics(kafka_config(untrusted), Names(untrusted.topic_prefix), timeout=10)


def test_a_worker_scores_and_learns_over_sasl_ssl(
    settings: Settings, secured: tuple[KafkaBroker, Path], tmp_path: Path
) -> None:
    """The worker process (its settings passed as variables, as `up` does): the scorer's
    confluent-kafka clients and the learner's faust (aiokafka) consumer over SASL_SSL."""
    broker, pki = secured
    s = sasl_settings(settings, broker, pki)
    ensure_topics(kafka_config(s), Names(s.topic_prefix))
    names = Names(s.topic_prefix)
    r = redis.Redis.from_url(s.redis_url or "")
    t = time.time() - 60
    tx = {"event_id": "w-1", "timestamp": t, "card_id": "c", "terminal_id": "t", "amount": 9.0}
    label = {"event_id": "w-1", "label": 1, "timestamp": t + 1}
    with running_worker(s, tmp_path / "worker.log", roles="scoring,learning"):
        p = producer(kafka_config(s))
        p.produce(names.topic("transactions"), orjson.dumps(tx), key=b"c")
        assert p.flush(30) == 0
        poll(lambda: r.get(names.score("w-1")) is not None, 90, "the transaction's score")
        p.produce(names.topic("labels"), orjson.dumps(label), key=b"w-1")
        assert p.flush(30) == 0
        learned = names.learner_stats()
        poll(lambda: int(r.hget(learned, "learned") or 0) >= 1, 90, "the label learned")
    r.close()
