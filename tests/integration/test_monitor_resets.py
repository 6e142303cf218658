"""The monitor follows the learner's resets of the online model (through Redis)."""

from __future__ import annotations

import pytest

from core.names import Names
from core.redis import redis_client
from core.settings import Settings
from streams.monitor_core import Monitor

pytestmark = pytest.mark.integration


def tracked(m: Monitor) -> set[str]:
    return {row["model"] for row in m.concept.report()}


def test_a_reset_online_model_gets_fresh_drift_detectors(settings: Settings) -> None:
    r = redis_client(settings)
    m = Monitor(settings, r, "test")
    for i in range(50):
        for model in ("online", "batch"):
            m.concept.update(model, float(i % 2), {"region": "north"}, float(i))
    m._follow_resets()  # the first look only learns the count
    assert tracked(m) == {"online", "batch"}
    r.hincrby(Names(settings.topic_prefix).learner_stats(), "resets", 1)
    m._follow_resets()
    assert tracked(m) == {"batch"}  # the online model's error stream starts afresh
    m.concept.update("online", 0.0, None, 60.0)
    m._follow_resets()  # no new reset: nothing forgotten
    assert tracked(m) == {"online", "batch"}
    r.close()
