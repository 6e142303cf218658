"""Data quality's reference outlives the monitor (real Valkey): a restarted monitor restores it
from Redis and judges the next windows against it, as the monitor before would have, instead
of collecting a new reference for a week of event time."""

from __future__ import annotations

import orjson
import pytest

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.streams.monitor.runner import Monitor
from tests.unit.monitors.test_dataquality import CHANGE_DAY, DAY, stream

pytestmark = pytest.mark.integration


def test_a_restarted_monitor_keeps_the_data_quality_reference(settings: Settings) -> None:
    s = settings.model_copy(
        update={
            "monitor_window_size": 0,
            "monitor_window_s": DAY,
            "monitor_warmup_days": 2.0,
            "monitor_reference_days": 5.0,
            "monitor_cooldown_s": 0.0,
        }
    )
    r = redis_client(redis_config(s))
    rows = stream(0, "missing")
    cut = next(i for i, row in enumerate(rows) if row["epoch"] >= (CHANGE_DAY - 0.5) * DAY)
    first = Monitor(Context.from_settings(s), r, "w1")
    first._begin(rows[0]["epoch"])  # as process_scores does (kept in Redis)
    for lo in range(0, cut, 500):
        first.publish(first.core.scores(rows[lo : min(lo + 500, cut)]))
    assert first.core.quality["time"].ready
    saved = orjson.loads(r.get(first.names.monitor("quality_state")) or b"null")
    assert saved == orjson.loads(orjson.dumps(first.core.quality_state()))

    again = Monitor(Context.from_settings(s), r, "w2")  # the helper restarted
    assert again.core.quality_state() == saved
    again._begin(rows[cut]["epoch"])  # the first event is read back from Redis
    alerts = []
    for lo in range(cut, len(rows), 500):
        outs = again.publish(again.core.scores(rows[lo : lo + 500]))
        alerts += [orjson.loads(o.value) for o in outs if o.topic.endswith("alerts")]
    quality = [a for a in alerts if a["kind"] == "quality"]
    assert {a["subject"] for a in quality} == {"channel:missing"}, [a["message"] for a in quality]
    assert quality[0]["details"]["window_start"].startswith(f"1970-01-{CHANGE_DAY + 1:02d}")
    assert not again.core.ready  # the feature reference is collected again meanwhile

    r.set(first.names.monitor("quality_state"), b"{not json")
    fresh = Monitor(Context.from_settings(s), r, "w3")  # unreadable: collected afresh
    assert fresh.core.quality == {} and not fresh.core.quality_changed
    r.close()
