"""No train/serve skew: features computed online in Redis equal an offline replay of the history.

The simulator's events go through the real system (Kafka, a worker, Valkey) one phase at a
time: each simulated day, the labels that became due, then that day's transactions. The same
order is stored as NDJSON (the history), replayed offline with models.features_replay.replay, and
every transaction's online feature row must agree to 1e-9.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.models.features import FEATURE_NAMES, FeatureSpec
from riverwatch.models.features_replay import replay
from riverwatch.simulator import NdjsonSink, SimConfig, TransactionSimulator, read_ndjson
from tests.support.workers import labels_handled, poll, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAYS = 12


def test_online_features_equal_offline_replay(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"label_delay_days": 2})
    names = Names(settings.topic_prefix)
    sim = TransactionSimulator(
        SimConfig(seed=11, n_customers=150, n_terminals=300, n_days=DAYS, label_delay_days=2)
    )
    history = tmp_path / "history.ndjson"
    r = redis.Redis.from_url(settings.redis_url or "")
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    labels_sent = 0
    day_of = lambda ev: int((ev.at - sim.config.start.timestamp()) // 86400)  # noqa: E731
    with running_worker(settings, tmp_path / "w.log"), NdjsonSink(history) as sink:
        for _day, events in itertools.groupby(sim.events(), key=day_of):
            day_events = list(events)
            for topic in ("labels", "transactions"):
                phase = [ev for ev in day_events if ev.topic == topic]
                if not phase:
                    continue
                for ev in phase:
                    p.produce(names.topic(topic), orjson.dumps(ev.payload), ev.key.encode())
                assert p.flush(30) == 0
                sink.send(phase)
                if topic == "labels":
                    labels_sent += len(phase)
                    poll(lambda n=labels_sent: labels_handled(r, names) >= n, 60, "labels")
                else:
                    keys = [names.score(ev.payload["event_id"]) for ev in phase]
                    poll(lambda k=keys: all(v is not None for v in r.mget(k)), 60, "txs scored")

    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    offline = replay(spec, (_as_history(ev) for ev in read_ndjson(history)))
    assert len(offline) > 1000
    eids = list(offline)
    online = [orjson.loads(v)["x"] for v in r.mget([names.feature_row(e) for e in eids])]
    a, b = np.asarray(online, dtype=float), np.asarray([offline[e] for e in eids])
    assert a.shape == b.shape == (len(eids), len(FEATURE_NAMES))
    worst = np.abs(a - b) / np.maximum(1.0, np.abs(b))
    assert worst.max() <= 1e-9, f"max relative difference {worst.max():.3g}"
    # The history exercised every feature, terminal risk from delayed labels included.
    assert (b[:, FEATURE_NAMES.index("term_risk_30d")] > 0).sum() >= 5


def _as_history(ev: object) -> tuple[object, ...]:
    pl = ev.payload  # type: ignore[attr-defined]
    if ev.topic == "labels":  # type: ignore[attr-defined]
        return ("label", pl["event_id"], pl["label"])
    from datetime import datetime

    epoch = datetime.fromisoformat(pl["timestamp"]).timestamp()
    return ("tx", pl["event_id"], epoch, pl["card_id"], pl["terminal_id"], pl["amount"])
