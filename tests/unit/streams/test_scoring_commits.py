"""The scoring role's loop commits at most every ``COMMIT_EVERY_S`` (roles/scoring.py), not
after each batch: at 500 tx/s it committed 44-107 times a second, requests the broker's group
coordinator answers while the heartbeats queued behind them wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import faust
import pytest
from confluent_kafka import Producer

from riverwatch.context import Context
from riverwatch.core.redis import redis_client
from riverwatch.core.roles import Role
from riverwatch.core.settings import Settings
from riverwatch.streams import batching
from riverwatch.streams.batching import BatchLoop
from riverwatch.streams.roles import scoring
from riverwatch.streams.runtime import WorkerContext
from tests.support.fakeloop import FakeProducer, TrickleConsumer


def scoring_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BatchLoop:
    """The loop the scoring role registers (nothing connects until it runs)."""
    s = Settings(topic_prefix="t1-", data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    root = Context.from_settings(s)
    ctx = WorkerContext.of(
        root,
        worker="w1",
        redis=redis_client(root.redis_config),
        producer=cast(Producer, FakeProducer()),
        roles=frozenset({Role.SCORING}),
    )
    loops: list[BatchLoop] = []
    monkeypatch.setattr(scoring, "loop_service", lambda _app, loop, _crash: loops.append(loop))
    scoring.register(cast(faust.App, None), ctx)
    (loop,) = loops
    return loop


def test_the_scorer_commits_at_most_every_commit_every_s_not_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = scoring_loop(tmp_path, monkeypatch)
    consumer = TrickleConsumer(loop.topic)
    monkeypatch.setattr(batching, "consumer", lambda *_a, **_k: consumer)
    batches: list[int] = []

    def handle(records: list[Any]) -> list[Any]:
        batches.append(len(records))
        return []

    loop.handler = handle  # the batches' outputs are not what this is about
    t = threading.Thread(target=loop.run, daemon=True)
    t.start()
    time.sleep(2.0)
    loop.stopping.set()
    t.join(10)
    assert len(batches) > 50  # the trickle came in small batches (~200 a second)
    assert scoring.COMMIT_EVERY_S >= 0.5
    assert consumer.commits <= 2 / scoring.COMMIT_EVERY_S + 2, consumer.commits
