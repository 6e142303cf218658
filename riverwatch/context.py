"""The composition root: what the worker's roles and the API need, built from Settings once.

:class:`Context` holds the settings and the topic and key :class:`~riverwatch.core.names.Names`,
and builds on demand the rest: the Kafka and Redis connection configs, the record limits, the
feature spec and set, the decision thresholds, the monitor's policy and core configurations,
the forecast and training configurations, the alerts' cooldowns, the API's, the webhook
sender's and the worker roles' knobs, and the stores over a client the caller owns (each
runtime opens its own clients: the worker a blocking one, the API an asyncio one, the alert
dispatcher one on its own event loop). Below the shell nothing else reads the Settings:
``make lint`` forbids importing them (the builders of the small parts are in
riverwatch/context_parts.py, which the shell also calls where it has no context).

It sits on its own floor, between the runtimes (``api``, ``streams``) and the stores: it
builds stores *and* alert stores, which are siblings that never import each other, so it
cannot live in either (docs/architecture.md, "Floors").

Each derived part is a cached property, built on first use: a process builds only what its
roles use, a bad setting fails the role that reads it (the API never parses the monitor's
settings), and the heavy imports (scikit-learn, pandas) come only with the parts that need
them.

>>> ctx = Context.from_settings(Settings(topic_prefix="doc-", feature_attributes="risk"))
>>> ctx.names.topic("scores"), ctx.features.names[-1], ctx.spec.bucket_s
('doc-scores', 'attr_risk', 3600)
>>> ctx.drift_columns[-1], ctx.training.delay_days
('attr_risk', 7)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self

import redis

from riverwatch import context_monitor as monitor_parts
from riverwatch import context_parts as parts
from riverwatch.context_parts import ApiConfig, WebhookConfig, WorkerConfig
from riverwatch.core.errors import ConfigError
from riverwatch.core.kafka import KafkaConfig
from riverwatch.core.limits import EventLimits
from riverwatch.core.names import Names
from riverwatch.core.redis import RedisConfig
from riverwatch.core.settings import Settings
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import FeatureSpec

if TYPE_CHECKING:  # imported where built: a process pays only for the parts it uses
    from riverwatch.alerts.store import AlertStore
    from riverwatch.models.forecast.types import ForecastConfig
    from riverwatch.models.promotion import TrainConfig
    from riverwatch.models.scoring import Thresholds
    from riverwatch.models.serving import ModelSet
    from riverwatch.monitors.concept import ConceptDriftMonitor
    from riverwatch.monitors.core.config import CoreConfig
    from riverwatch.monitors.policy.config import PolicyConfig
    from riverwatch.stores.features import RedisFeatureStore
    from riverwatch.stores.offline import OfflineStore
    from riverwatch.stores.registry import Registry
    from riverwatch.stores.snapshots import SnapshotStore


@dataclass(frozen=True, eq=False)
class Context:
    """The settings and everything built from them (see the module's docstring)."""

    settings: Settings
    names: Names

    @classmethod
    def from_settings(cls, settings: Settings, **parts: Any) -> Self:
        """The context of ``settings`` (cheap: the other parts are built on first use);
        ``parts``: the fields of a subclass (streams.runtime.WorkerContext)."""
        return cls(settings, Names(settings.topic_prefix), **parts)

    @classmethod
    def of(cls, root: Context, **parts: Any) -> Self:
        """A context on ``root``'s settings and names with ``parts``, the fields of a subclass
        (streams.app: the worker's context over the one the shell built)."""
        return cls(root.settings, root.names, **parts)

    def group(self, name: str) -> str:
        """The consumer group ``name`` under RIVERWATCH_CONSUMER_GROUP and the prefix."""
        return self.names.group(self.settings.consumer_group, name)

    # -- connections, records, the runtimes' knobs -----------------------------------------
    @cached_property
    def kafka_config(self) -> KafkaConfig:
        """The broker's address, transport security and consumer timing."""
        return parts.kafka_config(self.settings)

    @cached_property
    def redis_config(self) -> RedisConfig:
        """Redis's URL, password and TLS files."""
        return parts.redis_config(self.settings)

    @cached_property
    def limits(self) -> EventLimits:
        """The bounds of every accepted record."""
        return parts.event_limits(self.settings)

    @cached_property
    def api_config(self) -> ApiConfig:
        """The API's knobs."""
        return parts.api_config(self.settings)

    @cached_property
    def webhook_config(self) -> WebhookConfig:
        """The webhook sender's knobs."""
        return parts.webhook_config(self.settings)

    @cached_property
    def worker_config(self) -> WorkerConfig:
        """The worker roles' knobs."""
        return parts.worker_config(self.settings)

    # -- features and scoring ---------------------------------------------------------------
    @cached_property
    def spec(self) -> FeatureSpec:
        """The feature windows' bucket and the label delay."""
        return FeatureSpec(self.settings.feature_bucket_s, self.settings.label_delay_days)

    @cached_property
    def features(self) -> FeatureSet:
        """The model's columns: the built-in features plus RIVERWATCH_FEATURE_ATTRIBUTES."""
        return FeatureSet(self.settings.feature_attributes)

    @cached_property
    def thresholds(self) -> Thresholds:
        """The decision thresholds and the blend weight."""
        return parts.thresholds(self.settings)

    # -- monitoring -------------------------------------------------------------------------
    @cached_property
    def drift_columns(self) -> tuple[str, ...]:
        """The features data drift is computed on: the model's columns (attributes included)
        but RIVERWATCH_MONITOR_DRIFT_EXCLUDE; ConfigError when it names unknown features or
        leaves none (the known features include the attributes, which the settings do not
        know of: so this check is here, not in the settings' parser).

        >>> Context.from_settings(Settings(monitor_drift_exclude="hour, is_weekend")
        ...     ).drift_columns[:3]
        ('amount', 'is_night', 'card_n_1d')
        """
        names = self.features.names
        skip = set(self.settings.monitor_drift_exclude)
        if unknown := skip - set(names):
            raise ConfigError(
                f"RIVERWATCH_MONITOR_DRIFT_EXCLUDE names unknown features {sorted(unknown)}; "
                f"known: {', '.join(names)}"
            )
        if not (cols := [c for c in names if c not in skip]):
            raise ConfigError("RIVERWATCH_MONITOR_DRIFT_EXCLUDE leaves no feature to watch")
        return tuple(cols)

    @cached_property
    def policy(self) -> PolicyConfig:
        """The monitoring policy's thresholds."""
        return monitor_parts.policy_config(self.settings)

    def concept_monitor(self) -> ConceptDriftMonitor:
        """A new concept-drift monitor over the models' error streams (stateful: one per
        monitor, built when it starts)."""
        return monitor_parts.concept_monitor(self.settings)

    @property
    def monitor_history(self) -> int:
        """How many results of each kind the monitor keeps (RIVERWATCH_MONITOR_HISTORY)."""
        return self.settings.monitor_history

    def monitor_core(self, weights: dict[str, float] | None = None) -> CoreConfig:
        """The monitor core's configuration (``weights``: the champion's feature importance,
        if known)."""
        return monitor_parts.core_config(
            self.settings, self.features.names, self.drift_columns, self.policy, weights
        )

    # -- forecasting, training, alerts ------------------------------------------------------
    @cached_property
    def forecast(self) -> ForecastConfig:
        """The forecasters' knobs (``RIVERWATCH_FORECAST_*``)."""
        return parts.forecast_config(self.settings)

    @cached_property
    def training(self) -> TrainConfig:
        """The training protocol: windows, label delay, promotion metric and margin."""
        from riverwatch.models.promotion import TrainConfig

        s = self.settings
        return TrainConfig(
            train_days=s.train_days,
            holdout_days=s.holdout_days,
            delay_days=s.label_delay_days,
            metric=s.promotion_metric,
            margin=s.promotion_margin,
            refit=s.train_refit,
            half_life_days=s.train_half_life_days or None,
            max_rows=s.train_max_rows,
            members=s.train_members,
        )

    @cached_property
    def alert_cooldowns(self) -> dict[str, float]:
        """The per-kind cooldowns of RIVERWATCH_ALERT_COOLDOWN_KINDS (checked when the
        settings were built)."""
        return {kind.value: s for kind, s in self.settings.alert_cooldown_kinds.items()}

    # -- stores, over a client the caller owns ----------------------------------------------
    def feature_store(self, client: redis.Redis) -> RedisFeatureStore:
        """The card and terminal counters and the stored feature rows."""
        from riverwatch.stores.features import RedisFeatureStore

        return RedisFeatureStore(client, self.names, self.spec.retention_s)

    def snapshots(self, client: redis.Redis) -> SnapshotStore:
        """The online models' published snapshots."""
        from riverwatch.stores.snapshots import SnapshotStore

        return SnapshotStore(client, self.names)

    def registry(self, client: redis.Redis) -> Registry:
        """The batch models' registry (metadata in Redis, artifacts under the data dir)."""
        from riverwatch.stores.registry import Registry

        return Registry(client, self.names, self.settings.data_dir)

    def model_set(self, client: redis.Redis) -> ModelSet:
        """The models a scorer serves, reloaded every RIVERWATCH_MODEL_RELOAD_S."""
        from riverwatch.models.serving import ModelSet

        return ModelSet(
            self.snapshots(client),
            self.registry(client),
            self.settings.model_reload_s,
            self.features.names,
        )

    def offline(self, writer: str) -> OfflineStore:
        """The labeled rows' Parquet store; ``writer`` names this process's files."""
        from riverwatch.stores.offline import OfflineStore

        s = self.settings
        return OfflineStore(s.data_dir, writer, s.offline_flush_rows, self.features)

    def alert_store(self, client: Any) -> AlertStore:
        """The alerts' stream, dedup keys and webhook queues over an asyncio client."""
        from riverwatch.alerts.store import AlertStore

        s = self.settings
        return AlertStore(client, self.names, s.alert_stream_maxlen, s.webhook_queue_maxlen)
