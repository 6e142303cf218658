"""The scoring loop as the integration tests drive it in-process: the scorer built as a worker
builds it, a BatchLoop in a thread, the scorer group's committed offsets, and the monitor's
counters of rejected records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from riverwatch.context import Context
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.models.feature_set import FeatureSet
from riverwatch.models.features import FeatureSpec
from riverwatch.models.serving import ModelSet
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.registry import Registry
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.records import Handler
from riverwatch.streams.scorer import Scorer


def scorer(settings: Settings, r: redis.Redis) -> Scorer:
    """The scoring handler, built as a worker builds it."""
    names = Names(settings.topic_prefix)
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    features = FeatureSet(settings.feature_attributes)
    models = ModelSet(
        SnapshotStore(r, names),
        Registry(r, names, settings.data_dir),
        settings.model_reload_s,
        features.names,
    )
    return Scorer(
        Context.from_settings(settings),
        RedisFeatureStore(r, names, spec.retention_s),
        models,
        "test",
    )


@contextmanager
def started(loop: BatchLoop) -> Iterator[BatchLoop]:
    """``loop`` running in its thread; fails the test if it ever crashes."""
    crashes: list[BaseException] = []
    loop.start(crashes.append)
    try:
        yield loop
    finally:
        loop.stop()
    assert not crashes, f"the loop crashed: {crashes}"


@contextmanager
def running_loop(
    settings: Settings, handler: Handler, prod: Producer, **kw: float
) -> Iterator[BatchLoop]:
    """A BatchLoop on ``transactions`` in a thread; fails the test if it ever crashes."""
    names = Names(settings.topic_prefix)
    loop = BatchLoop(
        Context.from_settings(settings),
        names.topic("transactions"),
        names.group(settings.consumer_group, "scorer"),
        handler,
        prod,
        "scorer",
        **kw,
    )
    with started(loop):
        yield loop


def committed(settings: Settings, topic: str, role: str = "scorer") -> int:
    """Records committed by the ``role``'s group over ``topic``'s partitions."""
    names = Names(settings.topic_prefix)
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": names.group(settings.consumer_group, role),
        }
    )
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(settings.partitions)], 10)
    finally:
        c.close()
    return sum(tp.offset for tp in tps if tp.offset >= 0)


def committed_now(settings: Settings, topic: str) -> int:
    """Records committed by the scorer group, -1 while its coordinator cannot say (a broker
    just started answers the first offset fetches with an error)."""
    try:
        return committed(settings, topic)
    except KafkaException:
        return -1


def counters(r: redis.Redis, names: Names) -> dict[str, int]:
    raw: dict[bytes, bytes] = r.hgetall(names.monitor("rejects"))  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in raw.items()}
