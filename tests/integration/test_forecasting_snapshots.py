"""The forecaster snapshots its states at its loop's checkpoints, not per batch."""

from __future__ import annotations

import orjson
import pytest

from riverwatch.context import Context
from riverwatch.context_parts import kafka_config, redis_config
from riverwatch.core.kafka import producer
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.forecast.messages import iso
from riverwatch.models.forecast.state import load_state
from riverwatch.streams.forecasting import ForecastHandler
from riverwatch.streams.records import Record

pytestmark = pytest.mark.integration

T0 = 1_767_225_600


def test_batches_write_no_snapshot_until_the_checkpoint_which_holds_every_point(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    h = ForecastHandler(
        Context.from_settings(settings), r, producer(kafka_config(settings)), "test:1"
    )
    topic, sid = names.topic("metrics"), "snap.series"
    n = 0
    for _ in range(20):  # 20 batches of 10 minute points
        recs = []
        for _ in range(10):
            body = {"series_id": sid, "timestamp": iso(T0 + 60 * n), "value": float(n % 7)}
            recs.append(Record(topic, 0, n, sid.encode(), orjson.dumps(body), None))
            n += 1
        h.process(recs)
    assert not r.exists(names.forecast_state(sid))  # nothing written per batch
    h.checkpoint()
    state = load_state(r.hget(names.forecast_state(sid), "state") or b"")
    assert state.last_ts == T0 + 60 * (n - 1)
    assert len(r.lrange(names.forecast_observed(sid), 0, -1)) == min(n, h.config.horizon)
    h.checkpoint()  # nothing touched since: nothing to write
    assert h.touched == {}
