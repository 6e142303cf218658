"""Records a worker dead-letters because its handler raised on them (poison records, isolated by
the batch loop's bisection) count as rejected in the monitor's data-quality counters, once
each however often their batch is handled (real broker and Valkey)."""

from __future__ import annotations

import orjson
import pytest
import redis
from confluent_kafka import Producer

from riverwatch.context import Context
from riverwatch.context_parts import kafka_config
from riverwatch.core.kafka import producer
from riverwatch.core.names import Names
from riverwatch.core.settings import Settings
from riverwatch.monitors.dataquality import DataQuality
from riverwatch.monitors.dataquality.config import QualityConfig
from riverwatch.streams.forecasting import ForecastHandler
from riverwatch.streams.monitor.runner import Monitor
from riverwatch.streams.records import Out, Record
from riverwatch.streams.rejects import HANDLER_ERROR
from tests.support.builders import T0, tx
from tests.support.scoring import committed_now, counters, running_loop, scorer
from tests.support.workers import poll

pytestmark = pytest.mark.integration


def test_a_poison_record_dead_lettered_by_the_scorer_is_a_data_quality_reject(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    real = scorer(settings, r)

    def handler(records: list[Record]) -> list[Out]:
        if any(b'"p' in (rec.value or b"") for rec in records):  # valid, but it raises
            raise RuntimeError("cannot score a poison record")
        return real.process(records)

    counted: list[int] = []

    def on_failed(records: list[Record], failed: list[Record]) -> None:
        counted.append(real.rejects.count_failed(records, failed))
        if len(counted) == 1:  # counted, then Redis fails: the batch is handled again
            raise redis.exceptions.ConnectionError("Redis went away")

    bad = orjson.dumps({"event_id": "b", "timestamp": T0, "card_id": "c", "terminal_id": "t"})
    batch = [tx(i) for i in range(10)] + [bad]  # a missing amount: rejected as before
    batch += [tx(i).replace(b'"e', b'"p', 1) for i in (100, 101)] + [tx(i) for i in range(10, 20)]
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for value in batch:  # one key: one partition
        p.produce(names.topic("transactions"), value, b"k")
    assert p.flush(10) == 0
    options: dict = {"on_failed": on_failed}
    with running_loop(settings, handler, producer(kafka_config(settings)), **options):
        poll(lambda: committed_now(settings, names.topic("transactions")) == 23, 60, "23 committed")
    assert len(counted) >= 2 and counted[0] == 4 and sum(counted[1:]) == 0  # 2 fields x 2, once
    got = counters(r, names)
    assert got == {"records": 3, "amount|missing|missing": 1, HANDLER_ERROR: 2}

    # what the monitor reads: a window judged after these counters grew reports the rejects
    monitor = Monitor(Context.from_settings(settings), r, "w1")
    dq = DataQuality(QualityConfig(min_count=1), numeric=())
    dq.collect(0.0, 100.0)
    row = {"groups": {}, "dq": {"p": 0, "cat": {"channel": "pos"}}}
    dq.window(0.0, 100.0, [row] * 500, None, {})  # the reference: no rejects
    check = dq.window(100.0, 200.0, [row] * 50, None, monitor._read_rejects())
    assert check.report is not None and check.report["rejected"] == 3
    rate = check.report["rates"]["(record):invalid"]
    assert (rate["count"], rate["n"]) == (2, 53)
    assert any(f["subject"] == "(record):invalid" for f in check.findings)
    r.close()


def test_a_metric_point_a_forecaster_raised_on_moves_from_passed_to_rejected(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    forecaster = ForecastHandler(
        Context.from_settings(settings), r, producer(kafka_config(settings)), "w1"
    )
    t_metrics = names.topic("metrics")
    points = [
        Record(t_metrics, 0, i, b"s", orjson.dumps({"series_id": "s", "timestamp": T0 + 60 * i,
                                                     "value": float(i)}))
        for i in range(4)
    ]  # fmt: skip
    forecaster.process(points)
    assert counters(r, names) == {"valid.metrics": 4}
    for _ in range(2):  # the batch handled again: counted once
        forecaster.rejects.count_failed(points, [points[2]])
    assert counters(r, names) == {
        "valid.metrics": 3,
        "records.metrics": 1,
        f"metrics.{HANDLER_ERROR}": 1,
    }
    r.close()
