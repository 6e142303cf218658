"""Kafka transport security: RIVERWATCH_KAFKA_SECURITY_PROTOCOL and its SASL and TLS settings
reach every confluent-kafka client (librdkafka checks them when the client is made) and faust.

Live over SASL_SSL: tests/integration/test_kafka_transport.py.
"""

from __future__ import annotations

from pathlib import Path

import faust
import pytest
from confluent_kafka import KafkaException
from pydantic import SecretStr

from riverwatch.context import Context
from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import admin, client_config, consumer, faust_credentials, producer
from riverwatch.core.settings import Settings, to_env
from tests.support.pki import make_pki

BASE = {"kafka_bootstrap": "broker.example:9093", "redis_url": "redis://127.0.0.1:1/0"}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("kafka-pki"))


def sasl_ssl(ca: Path, **update: object) -> Settings:
    fields: dict[str, object] = {
        **BASE,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "riverwatch",
        "kafka_sasl_password": SecretStr("pw"),
        "kafka_ssl_ca_file": ca / "ca.crt",
    }
    return Settings(**(fields | update))  # type: ignore[arg-type]


def test_plaintext_adds_nothing() -> None:
    plain = kafka_config(Settings(**BASE))  # type: ignore[arg-type]
    assert client_config(plain) == {"bootstrap.servers": "broker.example:9093"}


def test_sasl_ssl_settings_make_the_client_config(ca: Path) -> None:
    conf = client_config(
        kafka_config(
            sasl_ssl(
                ca, kafka_ssl_cert_file=ca / "client.crt", kafka_ssl_key_file=ca / "client.key"
            )
        )
    )
    assert conf == {
        "bootstrap.servers": "broker.example:9093",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "riverwatch",
        "sasl.password": "pw",
        "ssl.ca.location": str(ca / "ca.crt"),
        "ssl.certificate.location": str(ca / "client.crt"),
        "ssl.key.location": str(ca / "client.key"),
    }


def test_every_confluent_client_is_made_with_them(ca: Path, tmp_path: Path) -> None:
    """librdkafka reads the CA file when a client is made: a missing one fails every factory,
    a real one makes them all (nothing connects here)."""
    missing = kafka_config(sasl_ssl(ca, kafka_ssl_ca_file=tmp_path / "no-such-ca.pem"))
    for make in (producer, lambda k: consumer(k, "g"), admin):
        with pytest.raises(KafkaException, match=r"ssl\.ca\.location"):
            make(missing)
    good = kafka_config(sasl_ssl(ca))
    producer(good).flush(0)
    consumer(good, "g").close()
    admin(good)


def test_faust_gets_the_same_credentials(ca: Path) -> None:
    creds = faust_credentials(kafka_config(sasl_ssl(ca)))
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password) == ("riverwatch", "pw")
    assert creds.mechanism.value == "SCRAM-SHA-512"
    assert creds.ssl_context is not None and creds.ssl_context.get_ca_certs()
    ssl_only = faust_credentials(
        kafka_config(
            Settings(**BASE, kafka_security_protocol="SSL", kafka_ssl_ca_file=ca / "ca.crt")  # type: ignore[arg-type]
        )
    )
    assert isinstance(ssl_only, faust.SSLCredentials)
    assert faust_credentials(kafka_config(Settings(**BASE))) is None  # type: ignore[arg-type]


def test_the_worker_app_is_configured_with_them(ca: Path, tmp_path: Path) -> None:
    from riverwatch.streams.app import create_app

    app = create_app(
        Context.from_settings(sasl_ssl(ca, data_dir=tmp_path, worker_roles="learning"))
    )
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)
    assert app.conf.broker_credentials.username == "riverwatch"


def test_sasl_needs_a_username_and_a_password() -> None:
    with pytest.raises(ValueError, match="RIVERWATCH_KAFKA_SASL_USERNAME"):
        Settings(**BASE, kafka_security_protocol="SASL_SSL")  # type: ignore[arg-type]


def test_child_processes_get_the_secrets_not_their_mask(ca: Path) -> None:
    """`up` passes its settings to its children as variables: a password must arrive as
    itself (str() of a SecretStr is '**********', which failed every child's login)."""
    s = sasl_ssl(ca).model_copy(update={"redis_password": SecretStr("redis-pw")})
    env = to_env(s)
    assert env["RIVERWATCH_KAFKA_SASL_PASSWORD"] == "pw"
    assert env["RIVERWATCH_REDIS_PASSWORD"] == "redis-pw"
