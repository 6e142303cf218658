"""A monitor worker restarted once its reference is ready goes on judging (a real worker
process on the real broker and Valkey): its windows and reference come back from their
snapshot (streams.monitor.snapshot), after a clean stop and after a kill -9 alike. Before
snapshots, the restarted monitor warmed up again (a new reference period) and judged nothing."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.models.features import FEATURE_NAMES
from riverwatch.monitors.windows import iso
from tests.support.workers import poll, running_worker

pytestmark = pytest.mark.integration
DAY = 86_400.0
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday, on a day's boundary
PER_DAY = 300


class Scored:
    """Scored events as the scorer leaves them: a feature row in Redis, a record on
    ``scores``; counts what it sent, as the monitor's ``stats`` do."""

    def __init__(self, settings: Settings):
        self.names = Names(settings.topic_prefix)
        self.r = redis.Redis.from_url(settings.redis_url or "")
        self.p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        self.rng = np.random.default_rng(11)
        self.sent = 0

    def send(self, times: list[float]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for t in times:
            eid, card = uuid.uuid4().hex, f"c{int(self.rng.integers(500))}"
            score = float(self.rng.beta(1, 12))
            decision = "review" if score >= 0.5 else "approve"
            row = {"event_id": eid, "card_id": card, "epoch": t, "score": score,
                   "online_score": score, "decision": decision,
                   "x": self.rng.lognormal(0, 0.5, len(FEATURE_NAMES)).tolist(),
                   "groups": {"region": ("north", "south")[int(self.rng.integers(2))]},
                   "dq": {"p": part(t)}}  # fmt: skip
            pipe.set(self.names.feature_row(eid), orjson.dumps(row))
            at = datetime.fromtimestamp(t, UTC).isoformat()
            rec = {"event_id": eid, "card_id": card, "timestamp": at, "score": score,
                   "online_score": score, "decision": decision, "model_versions": {},
                   "latency_ms": 1.0, "scored_at": at}  # fmt: skip
            self.p.produce(self.names.topic("scores"), orjson.dumps(rec), card.encode())
        pipe.execute()
        assert self.p.flush(30) == 0
        self.sent += len(times)
        poll(lambda: int(self.r.hget(self.names.monitor("stats"), "scores") or 0) >= self.sent,
             60, f"the monitor to see {self.sent} scores")  # fmt: skip

    def drift(self, day: int) -> dict[str, Any] | None:
        """The stored drift result of the time window of event day ``day``."""
        start = iso(T0 + day * DAY)
        for raw in self.r.lrange(self.names.monitor("drift:history"), 0, -1):
            res = orjson.loads(raw)
            if res["window_kind"] == "time" and res["window_start"] == start:
                return res
        return None


def day(d: int) -> list[float]:
    return [T0 + (d + (i + 0.5) / PER_DAY) * DAY for i in range(PER_DAY)]


def part(t: float) -> int:
    """The ``transactions`` partition (of two) a day's event came by: they alternate, so a
    day's first two events take both partitions past the previous day."""
    return round((t - T0) / DAY % 1 * PER_DAY - 0.5) % 2


@pytest.mark.parametrize("stop", ["clean", "kill"])
def test_a_restarted_monitor_is_still_judging(
    settings: Settings, tmp_path: Path, stop: str
) -> None:
    s = settings.model_copy(
        update={
            "monitor_window_size": 0,  # daily time windows only
            "monitor_window_s": DAY,
            "monitor_warmup_days": 1.0,  # reference: the second event day
            "monitor_reference_days": 1.0,
            # a clean stop's own snapshot (none due before it); a crash's periodic one
            "monitor_snapshot_s": 600.0 if stop == "clean" else 0.5,
        }
    )
    feed = Scored(s)
    with running_worker(s, tmp_path / "w1.log", roles="monitoring") as worker:
        for d in range(4):
            feed.send(day(d))
        feed.send(day(4)[:2])  # closes day 3's window (both partitions past it): the first judged
        first = poll(lambda: feed.drift(3), 30, "day 3's window")
        assert first["data"] and first["status"]["state"] == "ready", first
        if stop == "kill":  # a crash, once the snapshot and the offsets' commit are due
            time.sleep(4.0)
            worker.kill()
            worker.wait(10)
    with running_worker(s, tmp_path / "w2.log", roles="monitoring"):
        feed.send(day(4)[2:])
        feed.send(day(5)[:2])  # closes day 4's window (partitions apart: none of it late)
        judged = poll(lambda: feed.drift(4), 30, "day 4's window")
        assert judged["status"]["state"] == "ready", judged
        assert judged["data"] and judged["reference"]["source"] == "warm-up"
        assert judged["n"] == PER_DAY  # its events before and after the restart, once each
    log = (tmp_path / "w2.log").read_text()
    assert "monitor scores state restored" in log, log[-3000:]
