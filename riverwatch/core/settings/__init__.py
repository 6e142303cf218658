"""Typed, frozen settings read from ``RIVERWATCH_*`` environment variables.

Build them with :func:`load_settings` (or ``Settings(**overrides)`` in tests); nothing is read
at import time. Each field's description names its environment variable.

The fields are declared in groups, one module each (connections, api, pipeline, alerts,
monitoring, shell), and composed into the one :class:`Settings`: a group is a plain pydantic
model, so every field keeps its variable, default, bounds, validator and description, the
checks across groups stay here, and every reader still takes one ``Settings``.

List and map settings (roles, feature attributes, drift exclusions, per-kind cooldowns,
seasonality overrides) are typed fields, parsed once here from the same comma and
``k=v`` strings as always (settings/types.py): a reader gets a tuple, a frozenset of
:class:`~riverwatch.core.roles.Role` or a dict, and a bad value stops the process at
start-up with a ValidationError naming the variable.
"""

from __future__ import annotations

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riverwatch.core.errors import ConfigError
from riverwatch.core.settings.alerts import AlertSettings, WebhookSettings
from riverwatch.core.settings.api import ApiSettings, EventLimitSettings
from riverwatch.core.settings.base import DAY_SECONDS
from riverwatch.core.settings.connections import ConnectionSettings
from riverwatch.core.settings.monitoring import MonitorSettings
from riverwatch.core.settings.pipeline import (
    ForecastSettings,
    ScoringSettings,
    TrainingSettings,
    WorkerSettings,
)
from riverwatch.core.settings.shell import DemoSettings, SuperviseSettings
from riverwatch.core.settings.types import to_env_text


class Settings(
    DemoSettings,
    SuperviseSettings,
    EventLimitSettings,
    MonitorSettings,
    TrainingSettings,
    WebhookSettings,
    AlertSettings,
    ForecastSettings,
    WorkerSettings,
    ScoringSettings,
    ApiSettings,
    ConnectionSettings,
    BaseSettings,
):
    """Every knob of riverwatch. Environment variable = ``RIVERWATCH_`` + field name, upper case."""

    model_config = SettingsConfigDict(env_prefix="RIVERWATCH_", frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.review_threshold > self.decline_threshold:
            raise ConfigError(
                "RIVERWATCH_REVIEW_THRESHOLD must not exceed RIVERWATCH_DECLINE_THRESHOLD "
                f"({self.review_threshold} > {self.decline_threshold})"
            )
        if self.env == "production" and (not self.kafka_bootstrap or not self.redis_url):
            raise ConfigError(
                "production mode needs RIVERWATCH_KAFKA_BOOTSTRAP and RIVERWATCH_REDIS_URL "
                "(the embedded broker and Valkey are for development only)"
            )
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ConfigError(
                f"RIVERWATCH_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "RIVERWATCH_KAFKA_SASL_USERNAME and RIVERWATCH_KAFKA_SASL_PASSWORD"
            )
        if self.min_event_time >= self.max_event_time:
            raise ConfigError(
                "RIVERWATCH_MIN_EVENT_TIME must be before RIVERWATCH_MAX_EVENT_TIME "
                f"({self.min_event_time} >= {self.max_event_time})"
            )
        return self

    def __hash__(self) -> int:  # frozen, hashable as before the dict-valued (map) fields
        return hash(tuple(sorted(to_env(self).items())))

    @property
    def label_delay_s(self) -> int:
        """The label delay in seconds of event time."""
        return self.label_delay_days * DAY_SECONDS


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]


def to_env(settings: Settings) -> dict[str, str]:
    """The ``RIVERWATCH_*`` variables that rebuild ``settings`` in a child process."""
    out = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):  # str() of a secret is '**********'
            value = value.get_secret_value()
        if value is not None:  # lists and maps in the form their parsers read
            out[f"RIVERWATCH_{name.upper()}"] = to_env_text(value)
    return out
