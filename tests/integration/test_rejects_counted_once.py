"""The monitor's data-quality counters of rejected records (core.rejects) on the real broker
and Valkey: every kind of record counted (transactions, labels, metric points; by the workers
and by the API), and a record handed to a worker again (a retried batch, a bisected one, a
redelivery after a crash) counted once."""

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
from riverwatch.models.features import FeatureSpec
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.forecasting import ForecastHandler
from riverwatch.streams.learning import Learner
from riverwatch.streams.records import Out, Record, isolate
from tests.support.apiserver import running_api
from tests.support.builders import T0, tx
from tests.support.scoring import committed_now, counters, running_loop, scorer
from tests.support.workers import poll

pytestmark = pytest.mark.integration


def test_a_retried_batch_counts_its_rejected_transactions_once(settings: Settings) -> None:
    """The scorer counts a batch's rejects, then Redis fails (transient): the loop consumes the
    batch again from the broker and scores it; the rejects stay counted once (they were
    counted twice before the offsets' marks)."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    real = scorer(settings, r)
    calls: list[int] = []

    def handler(records: list[Record]) -> list[Out]:
        calls.append(len(records))
        outs = real.process(records)
        if len(calls) == 1:  # after the counting: as if Redis went away mid-batch
            raise redis.exceptions.ConnectionError("Redis went away")
        return outs

    bad = orjson.dumps({"event_id": "b", "timestamp": T0, "card_id": "c", "terminal_id": "t"})
    p = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i in range(10):
        p.produce(names.topic("transactions"), tx(i), b"k")  # one key: one partition
        if i % 2:
            p.produce(names.topic("transactions"), bad.replace(b'"b"', b'"b%d"' % i), b"k")
    assert p.flush(10) == 0
    with running_loop(settings, handler, producer(kafka_config(settings))):
        poll(lambda: committed_now(settings, names.topic("transactions")) == 15, 60, "15 committed")
    assert len(calls) >= 2 and sum(calls) > 15  # the first batch was handled twice
    assert counters(r, names) == {"records": 5, "amount|missing|missing": 5}
    r.close()


def test_labels_and_metric_points_are_counted_once_passed_or_rejected(settings: Settings) -> None:
    """The learner and the forecaster count their topic's rejected records and the ones that
    passed; the same batch again, or its halves after a bisection, adds nothing; a later
    batch of the same partition counts."""
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    store = RedisFeatureStore(r, names, spec.retention_s)
    ctx = Context.from_settings(settings)
    learner = Learner(ctx, r, store, SnapshotStore(r, names), "w1")
    t_labels, t_metrics = names.topic("labels"), names.topic("metrics")

    def label(i: int, value: object) -> Record:
        body = {"event_id": f"e{i}", "label": value, "timestamp": T0 + i}
        return Record(t_labels, 0, i, f"e{i}".encode(), orjson.dumps(body))

    batch = [label(i, 1 if i % 3 else "yes") for i in range(9)]  # 3 rejected
    batch.append(Record(t_labels, 0, 9, b"x", b"[1, 2]"))  # not an object
    learner.process(batch)
    want = {
        "records.labels": 4,
        "labels.label|invalid|literal_error": 3,
        "labels.(record)|invalid|model_type": 1,
        "valid.labels": 6,
    }
    assert counters(r, names) == want
    learner.process(batch)  # redelivered after a crash
    for half in (batch[:5], batch[5:]):  # or bisected around a poison record
        isolate(learner.process, half, lambda rec, exc: Out("dead", None, b""))
    assert counters(r, names) == want
    learner.process([label(10, "no"), label(11, 0)])  # the next records of the partition
    want |= {"records.labels": 5, "labels.label|invalid|literal_error": 4, "valid.labels": 7}
    assert counters(r, names) == want

    forecaster = ForecastHandler(ctx, r, producer(kafka_config(settings)), "w1")
    points = []
    for i in range(6):
        value: object = float(i) if i % 2 else 1e300  # beyond RIVERWATCH_MAX_ABS_VALUE
        body = {"series_id": "s", "timestamp": T0 + 60 * i, "value": value}
        points.append(Record(t_metrics, i % 2, i, b"s", orjson.dumps(body)))
    forecaster.process(points)
    forecaster.process(points[::-1][:3])
    metrics = {k: v for k, v in counters(r, names).items() if "metrics" in k}
    assert metrics == {
        "records.metrics": 3,
        "metrics.value|out_of_range|out_of_range": 3,
        "valid.metrics": 3,
    }
    r.close()


def test_the_api_counts_rejected_labels_and_metric_points_under_their_topic(
    settings: Settings,
) -> None:
    names = Names(settings.topic_prefix)
    r = redis.Redis.from_url(settings.redis_url or "")
    ok_label = {"event_id": "e1", "label": 1, "timestamp": T0}
    ok_point = {"series_id": "s", "timestamp": T0, "value": 1.0}
    with running_api(settings) as api:
        got = api.http.post(
            "/v1/labels",
            json=[ok_label, {**ok_label, "label": 2}, {"label": 1, "timestamp": T0}],
            headers=api.auth("writer"),
        )
        assert got.status_code == 202 and got.json()["rejected"] == 2
        got = api.http.post(
            "/v1/metrics", json=[ok_point, {**ok_point, "value": "x"}], headers=api.auth("writer")
        )
        assert got.status_code == 202 and got.json()["rejected"] == 1
    assert counters(r, names) == {
        "records.labels": 2,
        "labels.label|invalid|literal_error": 1,
        "labels.event_id|missing|missing": 1,
        "records.metrics": 1,
        "metrics.value|invalid|float_type": 1,
    }
    r.close()
