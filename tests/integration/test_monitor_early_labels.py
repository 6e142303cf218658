"""The monitor keeps a label that came before its event's feature row (real Valkey): joined
when the event's score comes through the monitor, or when the row is found on a later labels
batch (a score another monitor read); dropped and counted after the grace period or beyond
the limit; kept across a restart."""

from __future__ import annotations

import time

import orjson
import pytest
import redis

from riverwatch.context import Context
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Record
from tests.integration.test_monitor_poison import label, row, score, stat, watched

pytestmark = pytest.mark.integration


def store(r: redis.Redis, names: Names, ids: range) -> None:
    for i in ids:
        r.set(names.feature_row(f"e{i}"), orjson.dumps(row(i)))


def labels(names: Names, ids: range, first: int = 0) -> list[Record]:
    t = names.topic("labels")
    return [Record(t, 0, first + k, f"e{i}".encode(), label(f"e{i}", i)) for k, i in enumerate(ids)]


def scores(names: Names, ids: range) -> list[Record]:
    t = names.topic("scores")
    return [Record(t, 0, i, b"c", score(f"e{i}", i)) for i in ids]


def waiting(r: redis.Redis, names: Names) -> list[str]:
    return sorted(k.decode() for k in r.hkeys(names.monitor("labels:waiting")))


def test_labels_before_their_rows_are_joined_later_and_survive_a_restart(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    ctx = Context.from_settings(settings)
    monitor = Monitor(ctx, r, "w1")
    seen = watched(monitor)
    store(r, names, range(10))
    monitor.process_labels(labels(names, range(20)))
    assert seen == [f"e{i}" for i in range(10)]
    assert waiting(r, names) == sorted(f"e{i}" for i in range(10, 20))
    assert stat(r, names, "labels") == 20

    store(r, names, range(10, 15))  # scored: the rows first, then the scores
    monitor.process_scores(scores(names, range(10, 15)))
    assert seen[10:] == [f"e{i}" for i in range(10, 15)]
    assert stat(r, names, "labels_late") == 5
    assert waiting(r, names) == sorted(f"e{i}" for i in range(15, 20))

    # a restart keeps those waiting; rows of e15, e16 are stored (their scores went elsewhere)
    monitor = Monitor(ctx, r, "w1")
    seen = watched(monitor)
    store(r, names, range(15, 17))
    store(r, names, range(20, 21))
    monitor.process_labels(labels(names, range(20, 21), first=20))
    assert sorted(seen) == ["e15", "e16", "e20"]
    assert stat(r, names, "labels_late") == 7
    assert waiting(r, names) == ["e17", "e18", "e19"]

    # e17 waited past the grace period: dropped and counted at the next check
    lab, at, _ = monitor.waiting.labels["e17"]
    monitor.waiting.labels["e17"] = (lab, at, time.time() - settings.early_label_grace_s - 1)
    monitor.waiting.checked_at = -float("inf")
    monitor.process_labels(labels(names, range(21, 22), first=21))
    assert stat(r, names, "labels_unjoined") == 1
    assert waiting(r, names) == ["e18", "e19", "e21"]
    r.close()


def test_no_more_than_the_limit_wait(settings: Settings) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    ctx = Context.from_settings(settings.model_copy(update={"early_labels_max": 3}))
    Monitor(ctx, r, "w1").process_labels(labels(names, range(5)))
    assert waiting(r, names) == ["e0", "e1", "e2"]
    assert stat(r, names, "labels_unjoined") == 2
    r.close()
