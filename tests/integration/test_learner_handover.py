"""The online learner after the ``labels`` partition moved away and back (real Valkey)."""

from __future__ import annotations

import orjson
import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.names import Names
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.models import online
from riverwatch.models.features import FEATURE_NAMES, FeatureSpec
from riverwatch.models.serving import ONLINE
from riverwatch.stores.features import RedisFeatureStore
from riverwatch.stores.snapshots import SnapshotStore
from riverwatch.streams.learning import Learner
from riverwatch.streams.records import Record

pytestmark = pytest.mark.integration


def label(i: int, event_id: str) -> Record:
    body = {"event_id": event_id, "label": i % 2, "timestamp": "2026-01-09T00:00:00Z"}
    return Record("labels", 0, i, event_id.encode(), orjson.dumps(body), 0)


def test_a_learner_that_got_labels_back_continues_from_the_newest_model(
    settings: Settings,
) -> None:
    r = redis_client(redis_config(settings))
    names = Names(settings.topic_prefix)
    spec = FeatureSpec(settings.feature_bucket_s, settings.label_delay_days)
    store = RedisFeatureStore(r, names, spec.retention_s)
    snapshots = SnapshotStore(r, names)
    settings = settings.model_copy(update={"snapshot_every_labels": 1})
    for i in range(4):  # feature rows the labels join to
        row = {"x": [float(i + j) for j in range(len(FEATURE_NAMES))], "epoch": 1.0e9 + i,
               "terminal_id": "t", "card_id": "c"}  # fmt: skip
        r.set(names.feature_row(f"e{i}"), orjson.dumps(row))

    ctx = Context.from_settings(settings)
    first = Learner(ctx, r, store, snapshots, "w1")  # owns labels
    first.process([label(0, "e0")])
    assert first.version == 1
    second = Learner(ctx, r, store, snapshots, "w2")  # labels moved to another worker
    second.process([label(1, "e1"), label(2, "e2")])
    assert second.version == 2

    first.process([label(3, "e3")])  # ... and back: no stale model, no version 2 twice
    assert first.version == 3
    model, meta = online.load_snapshot(snapshots.load(ONLINE)[0])  # type: ignore[index]
    assert (meta["version"], meta["worker"]) == (3, "w1")
    # the model learned all four labels: the first one, the other worker's two, then e3
    expected = online.make_model()
    for i in range(4):
        x = dict(zip(FEATURE_NAMES, (float(i + j) for j in range(len(FEATURE_NAMES))), strict=True))
        online.learn(expected, x, i % 2)
    assert dict(model["LogisticRegression"].weights) == pytest.approx(
        dict(expected["LogisticRegression"].weights), abs=1e-12
    )
    r.close()
