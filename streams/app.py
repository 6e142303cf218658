"""The faust worker app, built by a factory: nothing is created at import time.

What runs in a worker:

* the scoring loop (``transactions`` -> ``scores``/``alerts``/``deadletter``): a confluent-kafka
  batch consumer run as a service of this app (see streams/batching.py for why);
* the ``labels`` agent (faust, micro-batches via ``take_events``): the online learner;
* a heartbeat timer that /readyz reads, and a snapshot timer for the learner, which also
  carries out pending resets of the online model on the worker that owns ``labels``.
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

from core.featurestore import RedisFeatureStore
from core.kafka import producer
from core.names import Names
from core.redis import redis_client
from core.registry import Registry
from core.settings import Settings
from core.snapshots import SnapshotStore
from models.features import FeatureSet, FeatureSpec
from models.serving import ModelSet
from streams.alerts import register_alerts
from streams.batching import BatchLoop
from streams.forecasting import register_forecasting
from streams.learning import Learner
from streams.monitor import register_monitor
from streams.offline import OfflineStore
from streams.records import Out, Record, from_events, raw_topic
from streams.scoring import Scorer
from streams.trainer import register_trainer

log = logging.getLogger(__name__)


def worker_id() -> str:
    """host:pid, unique per worker process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _die(exc: BaseException) -> None:
    # An agent must never die silently: a dead scoring loop takes its worker down, so the
    # supervisor (riverwatch up, Kubernetes) restarts it and the batch is consumed again.
    log.critical("scoring loop died (%s); stopping the worker", exc)
    os._exit(3)


def create_app(settings: Settings) -> faust.App:
    """A faust app wired to ``settings``' broker, Redis, topics and consumer groups."""
    names = Names(settings.topic_prefix)
    wid = worker_id()
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        names.group(settings.consumer_group, "worker"),
        broker=f"kafka://{settings.kafka_bootstrap}",
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
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    store = RedisFeatureStore(r, names, spec.retention_s)
    snapshots = SnapshotStore(r, names)
    prod = producer(settings)
    registry = Registry(r, names, settings.data_dir)
    features = FeatureSet.parse(settings.feature_attributes)
    models = ModelSet(snapshots, registry, settings.model_reload_s, features.names)
    scorer = Scorer(settings, store, models, wid)
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

    scoring = BatchLoop(
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
            scoring.start(_die)

        async def on_stop(self) -> None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, scoring.stop)
            if "l" in learner:  # last snapshot and offline rows before the process goes
                await loop.run_in_executor(learner_thread, learner["l"].maybe_snapshot, True)

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

    @app.timer(interval=settings.worker_heartbeat_s)
    async def heartbeat() -> None:
        if not scoring.ready.is_set():  # /readyz counts workers that can score right now
            return
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: r.hset(names.workers(), wid, time.time())
        )

    @app.timer(interval=max(0.2, settings.snapshot_every_s / 2))
    async def snapshot() -> None:
        # Also serves resets while no labels flow (take_events yields only non-empty batches).
        owner = owns_labels()
        if "l" in learner or owner:
            outs = await asyncio.get_running_loop().run_in_executor(learner_thread, tick, owner)
            await send(outs)

    register_forecasting(app, settings, r, prod, wid)
    register_alerts(app, settings, wid)
    register_trainer(app, settings, r)
    register_monitor(app, settings, wid)
    return app
