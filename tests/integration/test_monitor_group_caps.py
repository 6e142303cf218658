"""The monitor (streams.monitor.runner) caps the group values it tracks at
RIVERWATCH_MONITOR_MAX_GROUP_VALUES and counts the rest in riverwatch_group_values_pooled_total
(issue 13, finding 7), on the session's real Valkey."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from riverwatch.context import Context
from riverwatch.context_parts import redis_config
from riverwatch.core.redis import redis_client
from riverwatch.core.settings import Settings
from riverwatch.monitors.fairness import OTHER
from riverwatch.monitors.windows import Window
from riverwatch.streams.monitor.runner import Monitor

pytestmark = pytest.mark.integration
CAP, DISTINCT = 5, 60


def pooled(monitor: str) -> float:
    value = REGISTRY.get_sample_value("riverwatch_group_values_pooled_total", {"monitor": monitor})
    return value or 0.0


def test_the_monitor_pools_group_values_past_the_cap_and_counts_them(settings: Settings) -> None:
    s = settings.model_copy(update={"monitor_max_group_values": CAP})
    r = redis_client(redis_config(s))
    m = Monitor(Context.from_settings(s), r, "caps")
    rows = [
        {
            "decision": "approve",
            "score": 0.1,
            "online_score": 0.2,
            "groups": {"zip": f"z{i}"},
            "epoch": 1.7e9 + i,
            "card_id": f"c{i}",
        }
        for i in range(DISTINCT)
    ]
    concept_before, fairness_before = pooled("concept"), pooled("fairness")
    for i, row in enumerate(rows):
        m.core._errors(row, i % 2, 1.7e9 + i)
    m.export_counts()
    # two error streams (combined, online), each past its cap for DISTINCT - CAP values
    assert pooled("concept") - concept_before == 2 * (DISTINCT - CAP)
    groups = {g["group"] for g in m.concept.report() if g["model"] == "online"}
    assert f"zip={OTHER}" in groups and len(groups) == 1 + CAP + 1
    times = [1.7e9 + i for i in range(DISTINCT)]
    window = Window(
        "count", 0, times[0], times[-1], [(row, i % 2) for i, row in enumerate(rows)], times
    )
    m.core.labeled_window(window, None)
    m.export_counts()
    assert pooled("fairness") - fairness_before == DISTINCT - CAP
    r.close()
