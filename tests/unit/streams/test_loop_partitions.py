"""A loop that reads more than one topic (the monitor's: ``scores``, and ``labels`` through
``BatchLoop.also``) tracks what it owns per topic: losing ``labels``' partition 0 leaves it
owning ``scores``' partition 0, whose lag it keeps reporting (before, partitions were kept as
bare numbers, so the revoke also dropped ``scores[0]`` and set its lag gauge to "unknown")."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import REGISTRY

from riverwatch.context import Context
from riverwatch.core.settings import Settings
from riverwatch.streams.batching import BatchLoop
from tests.support.fakeloop import FakeProducer


def lag(partition: int) -> float | None:
    """The gauge of the test's own topic (bare name ``lagtest``: no other test sets it)."""
    return REGISTRY.get_sample_value(
        "riverwatch_consumer_lag", {"topic": "lagtest", "partition": str(partition)}
    )


def stats(topic: str, lags: dict[int, int]) -> str:
    """librdkafka's statistics JSON, the part report_lag reads."""
    parts = {str(p): {"consumer_lag": n} for p, n in lags.items()}
    parts["-1"] = {"consumer_lag": -1}
    return orjson.dumps({"topics": {topic: {"partitions": parts}}}).decode()


def test_a_loop_owns_partitions_per_topic(tmp_path: Path) -> None:
    ctx = Context.from_settings(Settings(topic_prefix="lp-", data_dir=tmp_path))
    loop = BatchLoop(
        ctx, "lp-lagtest", "g", lambda _r: [], cast(Producer, FakeProducer()), "monitor"
    )
    loop.also = ("lp-labels",)
    c = cast(Consumer, None)  # the callbacks only use it to settle what is in flight: nothing

    loop._assign(c, [TopicPartition("lp-lagtest", 0), TopicPartition("lp-lagtest", 1)])
    loop._assign(c, [TopicPartition("lp-labels", 0), TopicPartition("lp-labels", 3)])
    assert loop.assigned == {0, 1}  # labels[3] is not a partition of scores this loop owns
    loop._lag(stats("lp-lagtest", {0: 40, 1: 7, 3: 99}))
    assert (lag(0), lag(1), lag(3)) == (40, 7, None)

    loop._lost(c, [TopicPartition("lp-labels", 0)])
    assert loop.assigned == {0, 1}
    assert lag(0) == 40  # still its owner's figure, not "unknown"
    loop._lag(stats("lp-lagtest", {0: 12, 1: 7}))
    assert lag(0) == 12

    loop._lost(c, [TopicPartition("lp-lagtest", 0)])
    assert loop.assigned == {1}
    assert lag(0) == -1
    loop._lag(stats("lp-lagtest", {0: 5, 1: 2}))
    assert (lag(0), lag(1)) == (-1, 2)


def test_the_owned_partitions_survive_in_any_order(tmp_path: Path) -> None:
    ctx = Context.from_settings(Settings(topic_prefix="lq-", data_dir=tmp_path))
    loop = BatchLoop(ctx, "lq-scores", "g", lambda _r: [], cast(Producer, FakeProducer()), "m")
    loop.also = ("lq-labels",)
    c = cast(Any, None)
    loop._assign(c, [TopicPartition("lq-labels", 0)])
    assert loop.assigned == frozenset()
    assert loop.ready.is_set()  # an assignment came, even if none of it is on scores
    loop._assign(c, [TopicPartition("lq-scores", 0)])
    loop._lost(c, [TopicPartition("lq-labels", 0)])
    assert loop.assigned == {0}
