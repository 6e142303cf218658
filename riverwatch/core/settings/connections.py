"""Where riverwatch's broker and Redis are and how it reaches them (transport security,
topic prefix, partitions, consumer groups)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class ConnectionSettings(BaseModel):
    """The environment, the data directory, Kafka and Redis."""

    env: Literal["development", "production"] = Field(
        "development", description="RIVERWATCH_ENV: 'production' refuses placeholder secrets."
    )
    data_dir: Path = Field(
        Path(".riverwatch"),
        description="RIVERWATCH_DATA_DIR: API key file, offline store, registry artifacts, logs.",
    )
    kafka_bootstrap: str | None = Field(
        None,
        description="RIVERWATCH_KAFKA_BOOTSTRAP: unset -> `up` starts an embedded broker.",
    )
    redis_url: str | None = Field(
        None, description="RIVERWATCH_REDIS_URL: redis://...; unset -> `up` starts embedded Valkey."
    )
    # Transport security (README, "Security"). Kafka: every confluent-kafka client and faust.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="RIVERWATCH_KAFKA_SECURITY_PROTOCOL: PLAINTEXT, SSL (TLS, optionally with a "
        "client certificate) or SASL_SSL (TLS and a SASL login).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="RIVERWATCH_KAFKA_SASL_MECHANISM (SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(
        None, description="RIVERWATCH_KAFKA_SASL_USERNAME (SASL_* protocols)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="RIVERWATCH_KAFKA_SASL_PASSWORD (SASL_* protocols; from a secret)."
    )
    kafka_ssl_ca_file: Path | None = Field(
        None,
        description="RIVERWATCH_KAFKA_SSL_CA_FILE: PEM CA bundle that signed the brokers' "
        "certificates (unset: the system's CAs).",
    )
    kafka_ssl_cert_file: Path | None = Field(
        None, description="RIVERWATCH_KAFKA_SSL_CERT_FILE: PEM client certificate (mutual TLS)."
    )
    kafka_ssl_key_file: Path | None = Field(
        None, description="RIVERWATCH_KAFKA_SSL_KEY_FILE: PEM key of the client certificate."
    )
    # Redis: AUTH is the URL's password (redis://:<password>@host) or RIVERWATCH_REDIS_PASSWORD;
    # TLS is a rediss:// URL, verified against these files.
    redis_password: SecretStr | None = Field(
        None,
        description="RIVERWATCH_REDIS_PASSWORD: the AUTH password when the URL holds none "
        "(lets the URL stay in a ConfigMap and the password in a Secret).",
    )
    redis_ssl_ca_file: Path | None = Field(
        None,
        description="RIVERWATCH_REDIS_SSL_CA_FILE: PEM CA bundle for a rediss:// URL "
        "(unset: the system's CAs).",
    )
    redis_ssl_cert_file: Path | None = Field(
        None, description="RIVERWATCH_REDIS_SSL_CERT_FILE: PEM client certificate (mutual TLS)."
    )
    redis_ssl_key_file: Path | None = Field(
        None, description="RIVERWATCH_REDIS_SSL_KEY_FILE: PEM key of the client certificate."
    )
    topic_prefix: str = Field(
        "", description="RIVERWATCH_TOPIC_PREFIX: prepended to every topic, group and Redis key."
    )
    partitions: int = Field(
        4, ge=1, description="RIVERWATCH_PARTITIONS: partitions for the topics riverwatch creates."
    )
    consumer_group: str = Field(
        "riverwatch", description="RIVERWATCH_CONSUMER_GROUP: base name of the consumer groups."
    )
    session_timeout_ms: int = Field(
        6000,
        ge=1000,
        description="RIVERWATCH_SESSION_TIMEOUT_MS: session timeout (short: quick joins).",
    )
    kafka_fetch_wait_ms: int = Field(
        0,
        ge=0,
        description="RIVERWATCH_KAFKA_FETCH_WAIT_MS: consumers' fetch.wait.max.ms; 0 picks it "
        "per broker (100 on both: riverwatch.core.kafka).",
    )
