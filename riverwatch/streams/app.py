"""The faust worker app, built by a factory: nothing is created at import time.

What runs in a worker, by role (``RIVERWATCH_WORKER_ROLES``, default ``all``):

* ``scoring``: the scoring loop (``transactions`` -> ``scores``/``alerts``/``deadletter``), a
  confluent-kafka batch consumer run as a service of this app (see streams/batching.py for why);
* ``learning``: the ``labels`` agent (faust, micro-batches via ``take_events``), the online
  learner, and a snapshot timer that also carries out pending resets of the online model on
  the worker that owns ``labels``;
* ``alerts`` (streams/alert_dispatcher.py), ``forecasting`` (streams/forecasting.py), ``monitoring``
  (streams/monitor/agents.py) and ``training`` (streams/trainer.py);
* always a heartbeat timer: scorers beat into ``workers`` (what /readyz counts), the others
  into ``helpers``.

One process per core runs every role by default; the forecaster, the monitor and the
trainer then share the scorer's interpreter lock (measured: they held it for over a third
of the scorer's time in a replay). ``riverwatch up`` and the deploy manifests run them in a
process of their own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from mode import Service

from riverwatch.core.errors import ConfigError
from riverwatch.core.kafka import faust_credentials, producer
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import FeatureSet, FeatureSpec
from riverwatch.models.serving import ModelSet
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.offline import OfflineStore
from riverwatch.stores.registry import Registry
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.alert_dispatcher import register_alerts
from riverwatch.streams.batching import BatchLoop, tune_gc
from riverwatch.streams.forecasting import register_forecasting
from riverwatch.streams.learning import Learner
from riverwatch.streams.monitor.agents import register_monitor
from riverwatch.streams.records import Out, Record, from_events, raw_topic
from riverwatch.streams.scorer import Scorer
from riverwatch.streams.trainer import register_trainer

log = logging.getLogger(__name__)


def worker_id() -> str:
    """host:pid, unique per worker process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _die(exc: BaseException) -> None:
    # An agent must never die silently: a dead scoring loop takes its worker down, so the
    # supervisor (riverwatch up, Kubernetes) restarts it and the batch is consumed again.
    log.critical("scoring loop died (%s); stopping the worker", exc)
    os._exit(3)


ROLES = ("scoring", "learning", "alerts", "forecasting", "monitoring", "training")


def worker_roles(settings: Settings) -> frozenset[str]:
    """The roles ``RIVERWATCH_WORKER_ROLES`` names (``all``: every one).

    >>> sorted(worker_roles(Settings(worker_roles="monitoring, forecasting")))
    ['forecasting', 'monitoring']
    >>> worker_roles(Settings(worker_roles="all")) == frozenset(ROLES)
    True
    >>> worker_roles(Settings(worker_roles="scoring,sorting"))
    Traceback (most recent call last):
    ...
    riverwatch.core.errors.ConfigError: RIVERWATCH_WORKER_ROLES: unknown role 'sorting' \
(known: all, scoring, learning, alerts, forecasting, monitoring, training)
    """
    names = [r.strip() for r in settings.worker_roles.split(",") if r.strip()]
    if names == ["all"]:
        return frozenset(ROLES)
    for r in names:
        if r not in ROLES:
            raise ConfigError(
                f"RIVERWATCH_WORKER_ROLES: unknown role {r!r} (known: all, {', '.join(ROLES)})"
            )
    if not names:
        raise ConfigError("RIVERWATCH_WORKER_ROLES is empty: name at least one role, or 'all'")
    return frozenset(names)


def create_app(settings: Settings) -> faust.App:
    """A faust app wired to ``settings``' broker, Redis, topics and consumer groups.

    It runs the agents of the worker's roles (:func:`worker_roles`). Processes with other
    roles form other consumer groups, so each sees every partition its own agents need.
    """
    roles = worker_roles(settings)
    names = Names(settings.topic_prefix)
    wid = worker_id()
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    group = "worker" if roles == frozenset(ROLES) else "worker-" + "-".join(sorted(roles))
    app = faust.App(
        names.group(settings.consumer_group, group),
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_ms / 3000),
        broker_rebalance_timeout=settings.session_timeout_ms / 1000,
        consumer_auto_offset_reset="earliest",
    )
    r = redis_client(settings)
    prod = producer(settings)
    scoring = _register_scoring(app, settings, r, prod, wid) if "scoring" in roles else None
    if "learning" in roles:
        _register_learning(app, settings, r, wid)

    # Scorers beat into ``workers`` (what /readyz counts), other processes into ``helpers``.
    beats = names.workers() if "scoring" in roles else names.helpers()

    @app.timer(interval=settings.worker_heartbeat_s)
    async def heartbeat() -> None:
        if scoring is not None and not scoring.ready.is_set():
            return  # /readyz counts workers that can score right now
        await asyncio.get_running_loop().run_in_executor(None, beat)

    def beat() -> None:
        p = r.pipeline(transaction=False)
        p.hset(beats, wid, time.time())
        if scoring is not None:  # /readyz wants every transactions partition owned
            p.hset(names.worker_partitions(), wid, ",".join(map(str, sorted(scoring.assigned))))
        p.execute()

    if "forecasting" in roles:
        register_forecasting(app, settings, r, prod, wid)
    if "alerts" in roles:
        register_alerts(app, settings, wid)
    if "training" in roles:
        register_trainer(app, settings, r)
    if "monitoring" in roles:
        register_monitor(app, settings, wid)
    log.info("worker %s runs: %s", wid, ", ".join(r for r in ROLES if r in roles))
    return app


def _register_scoring(app: faust.App, settings: Settings, r: Any, prod: Any, wid: str) -> BatchLoop:
    """The scoring loop (``transactions`` -> features -> models -> ``scores`` and alerts), run
    as a service of ``app``."""
    names = Names(settings.topic_prefix)
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    store = RedisFeatureStore(r, names, spec.retention_s)
    features = FeatureSet.parse(settings.feature_attributes)
    models = ModelSet(
        SnapshotStore(r, names),
        Registry(r, names, settings.data_dir),
        settings.model_reload_s,
        features.names,
    )
    scorer = Scorer(settings, store, models, wid)
    loop = BatchLoop(
        settings,
        names.topic("transactions"),
        names.group(settings.consumer_group, "scorer"),
        scorer.process,
        prod,
        "scorer",
    )

    @app.service
    class ScoringService(Service):  # the hot path, outside faust's per-event machinery
        async def on_start(self) -> None:
            tune_gc()  # once the worker's start-up objects exist
            loop.start(_die)

        async def on_stop(self) -> None:
            await asyncio.get_running_loop().run_in_executor(None, loop.stop)

    return loop


def _register_learning(app: faust.App, settings: Settings, r: Any, wid: str) -> None:
    """The online learner: ``labels`` -> feature rows -> River, snapshots, resets."""
    names = Names(settings.topic_prefix)
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    store = RedisFeatureStore(r, names, spec.retention_s)
    snapshots = SnapshotStore(r, names)
    features = FeatureSet.parse(settings.feature_attributes)
    learner: dict[str, Learner] = {}  # created on first use: only the label owner needs one
    # One thread owns the learner, so learning and snapshotting never touch the model at once.
    learner_thread = ThreadPoolExecutor(1, thread_name_prefix="learner")

    def get_learner() -> Learner:
        if "l" not in learner:
            offline = OfflineStore(settings.data_dir, wid, settings.offline_flush_rows, features)
            learner["l"] = Learner(settings, r, store, snapshots, wid, offline)
        return learner["l"]

    def learn_batch(records: list[Record]) -> list[Out]:
        return get_learner().process(records)

    @app.service
    class LearnerService(Service):
        async def on_stop(self) -> None:
            if "l" in learner:  # last snapshot and offline rows before the process goes
                await asyncio.get_running_loop().run_in_executor(
                    learner_thread, learner["l"].maybe_snapshot, True
                )

    labels_name = names.topic("labels")
    labels_topic = raw_topic(app, labels_name)

    async def send(outs: list[Out]) -> None:
        for o in outs:
            await app.producer.send(o.topic, o.key, o.value, None, None, None)

    def owns_labels() -> bool:
        """True while this worker is assigned the ``labels`` partition: the learner's owner."""
        try:
            return any(tp.topic == labels_name for tp in app.consumer.assignment())
        except ConsumerNotStarted:
            return False

    def tick(owner: bool) -> list[Out]:
        current = get_learner()
        current.maybe_snapshot()
        # A worker that lost ``labels`` in a rebalance keeps its Learner, whose model is stale:
        # only the owner may replace the model, or two writers would publish versions.
        return current.check_resets() if owner else []

    @app.agent(labels_topic)
    async def learn(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.2):
            records = from_events(events)
            outs = await asyncio.get_running_loop().run_in_executor(
                learner_thread, learn_batch, records
            )
            await send(outs)

    @app.timer(interval=max(0.2, settings.snapshot_every_s / 2))
    async def snapshot() -> None:
        # Also serves resets while no labels flow (take_events yields only non-empty batches).
        owner = owns_labels()
        if "l" in learner or owner:
            outs = await asyncio.get_running_loop().run_in_executor(learner_thread, tick, owner)
            await send(outs)
