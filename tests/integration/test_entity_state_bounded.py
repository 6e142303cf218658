"""An entity's counters in Redis stay bounded however long its history runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models.features import WINDOWS_DAYS, FeatureSpec
from riverwatch.models.serving import ModelSet
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.registry import Registry
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.records import Record
from riverwatch.streams.scorer import Scorer

pytestmark = pytest.mark.integration

T0 = 1_767_225_600


def test_a_card_and_terminal_with_90_days_of_hourly_history_keep_a_bounded_hash(
    settings: Settings, tmp_path: Path
) -> None:
    names = Names(settings.topic_prefix)
    r = redis_client(redis_config(settings))
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    models = ModelSet(SnapshotStore(r, names), Registry(r, names, tmp_path), 1.0)
    sc = Scorer(
        Context.from_settings(settings),
        RedisFeatureStore(r, names, spec.retention_s),
        models,
        "test:0",
    )
    topic = names.topic("transactions")
    days, per_hour = 90, 1
    recs = [
        Record(
            topic,
            0,
            i,
            b"c-long",
            orjson.dumps(
                {
                    "event_id": f"long-{i}",
                    "timestamp": T0 + i * 3600 / per_hour,
                    "card_id": "c-long",
                    "terminal_id": "t-long",
                    "amount": 10.0,
                }
            ),
            None,
        )
        for i in range(days * 24 * per_hour)
    ]
    for i in range(0, len(recs), 200):  # batches in event order, as the loop hands them over
        outs = sc.process(recs[i : i + 200])
        assert not [o for o in outs if o.topic == names.topic("deadletter")]
    # Buckets a window can still reach: the label delay plus the longest window (+1 for the
    # batch's own span); two fields each (count, value), a card's three (and its maximum).
    reach = spec.delay_buckets + max(WINDOWS_DAYS) * spec.per_day + spec.per_day
    for kind, entity, fields in (("card", "c-long", 3), ("terminal", "t-long", 2)):
        n = r.hlen(names.entity(kind, entity))
        assert 0 < n <= fields * reach, (kind, n, fields * reach)
